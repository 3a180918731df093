/* Minimal userspace stand-ins for the kernel facilities the copied
 * functions use. Nothing here changes their parsing logic. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
typedef uint8_t u8;
typedef int16_t s16;
typedef uint32_t u32;
typedef uint64_t u64;
#define fallthrough __attribute__((__fallthrough__))
#define EXPORT_SYMBOL(x)
#define __init
#define __initdata
#define __initconst
#define COMMAND_LINE_SIZE 2048
#define pr_debug(...) do {} while (0)
#define pr_err(...) do {} while (0)
#define pr_warn(...) do {} while (0)
#define pr_info(...) do {} while (0)
#define ERR_PTR(e) ((void *)(intptr_t)(e))
#define IS_ERR(p) ((uintptr_t)(p) >= (uintptr_t)-4095)
#define IS_ERR_OR_NULL(p) (!(p) || IS_ERR(p))
#define IS_ENABLED(x) (x)
#define CONFIG_X86_64 1
#define CONFIG_EFI_SOFT_RESERVE 1
#define CONFIG_BLK_DEV_INITRD 1
#define CONFIG_ARCH_HAS_MEM_ENCRYPT 1 /* efi_parse_options() reads mem_encrypt= from Linux 6.10 on */
#define CONFIG_CMDLINE_BOOL 0 /* Debian 6.1 and 6.12 amd64: not set */
static inline int irqs_disabled(void) { return 0; }
static inline bool strstarts(const char *str, const char *prefix)
{ return strncmp(str, prefix, strlen(prefix)) == 0; }
static inline char *strnchr(const char *s, size_t count, int c)
{ while (count--) { if (*s == (char)c) return (char *)s; if (*s++ == '\0') break; } return NULL; }
#define BUG() abort()
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* include/linux/moduleparam.h (parse_args()'s and parse_one()'s type from Linux 6.6 on) */
typedef int (*parse_unknown_fn)(char *param, char *val, const char *doing, void *arg);
