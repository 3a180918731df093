/* shim: arch/x86/include/asm/cmdline.h, which arch/x86/lib/cmdline.c
 * includes from Linux 6.9 on for its CONFIG_CMDLINE_BOOL fallback. Debian
 * builds without CONFIG_CMDLINE_BOOL (kshim.h: 0), so the built-in line
 * is never searched; these only let the copied code compile. */
#pragma once
#include "../kshim.h"
static char builtin_cmdline[COMMAND_LINE_SIZE];
static bool builtin_cmdline_added = true;
