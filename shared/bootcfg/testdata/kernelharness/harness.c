/*
 * harness.c: runs Linux's own command line parsers (copied verbatim into
 * gen/ by gen.sh from a kernel source tree) on command lines read from
 * stdin and prints what each of them finds.
 *
 * Input: records, each a 4-byte little-endian length then that many bytes.
 * Arguments: the x86 early options to look up, "b:NAME" for
 * cmdline_find_option_bool(NAME) and "v:NAME" for cmdline_find_option(NAME).
 *
 * Output per record (strings hex-encoded, "-" for NULL/empty):
 *   P GROUP PARAMOFF KEYHEX HASVAL VALHEX   next_arg()'s param/val, in
 *       parse_args() order: group 0 before "--", 1 the init arguments
 *       (parse_args on what the first returned), 2 what follows a second
 *       "--" (parsed on by the harness for comparison only).
 *   Q 0|1          1 if a next_arg() call ended inside a double quote
 *   B NAME POS     cmdline_find_option_bool (1-based, 0 none)
 *   V NAME LEN HEX cmdline_find_option (LEN -1 none), buffer 2048
 *   S NAME|-       x86 EFI stub parse_options(): cmdline_memmap_override
 *   F nokaslr quiet noinitrd no5lvl nochunk novamap nosoftreserve   efi_parse_options()
 *   C SUFFIX OFF   get_last_crashkernel("crashkernel=", NULL|",high"|",low"), -1 none
 *   A HEX...       argv_init after start_kernel's two parse_args (no
 *                  parameter known: every unknown one goes to PID 1)
 *   N HEX...       envp_init likewise
 *   X panic|-      panic_later
 *   H NAME HEX     a __setup handler Hazard names (init=, rdinit=,
 *                  sysrq_always_enabled) was called, with its argument
 *   END
 */
#include "kshim.h"
#include <linux/ctype.h>

/* --- init/main.c context ------------------------------------------------ */
#define MAX_INIT_ARGS 32 /* CONFIG_INIT_ENV_ARG_LIMIT of 6.1.0-57-amd64 */
#define MAX_INIT_ENVS 32
static const char *argv_init[MAX_INIT_ARGS + 2];
static const char *envp_init[MAX_INIT_ENVS + 2];
static const char *panic_later, *panic_param;

struct obs_kernel_param {
	const char *str;
	int (*setup_func)(char *);
	int early;
};
static int early_stub(char *s) { (void)s; return 0; }
/* early_param("initrd") (init/do_mounts_initrd.c), for OVMF's
 * initrd=initrd, and the __setup handlers Hazard names; every other
 * parameter is unknown, the bound the Go code assumes. */
/* The __setup handlers Hazard names (init/main.c, drivers/tty/sysrq.c):
 * each records that the kernel called it. */
static void hex(const char *s);
static int hz_init(char *s) { printf("H init="); hex(s); putchar('\n'); return 1; }
static int hz_rdinit(char *s) { printf("H rdinit="); hex(s); putchar('\n'); return 1; }
static int hz_sysrq(char *s) { printf("H sysrq_always_enabled"); hex(s); putchar('\n'); return 1; }
/* init/do_mounts_initrd.c, kernel/trace/trace_kprobe.c, kernel/trace/trace.c
 * (tp_printk's handler declines "_..." and the kernel goes on to the next
 * entry; the call is what is recorded). */
static int hz_noinitrd(char *s) { printf("H noinitrd"); hex(s); putchar('\n'); return 1; }
static int hz_kprobe(char *s) { printf("H kprobe_event="); hex(s); putchar('\n'); return 1; }
static int hz_tp(char *s) { printf("H tp_printk"); hex(s); putchar('\n'); return *s != '_'; }
static int hz_ftdump(char *s) { printf("H ftrace_dump_on_oops"); hex(s); putchar('\n'); return 1; }
static const struct obs_kernel_param setup_tab[] = {
	{ "initrd", early_stub, 1 },
	{ "init=", hz_init, 0 },
	{ "rdinit=", hz_rdinit, 0 },
	{ "sysrq_always_enabled", hz_sysrq, 0 },
	{ "noinitrd", hz_noinitrd, 0 },
	{ "kprobe_event=", hz_kprobe, 0 },
	{ "tp_printk", hz_tp, 0 },
	{ "ftrace_dump_on_oops", hz_ftdump, 0 },
};
#define __setup_start (&setup_tab[0])
#define __setup_end (&setup_tab[sizeof(setup_tab) / sizeof(setup_tab[0])])

/* --- kernel/params.c context -------------------------------------------- */
struct kernel_param;
struct kernel_param_ops {
	unsigned int flags;
	int (*set)(const char *val, const struct kernel_param *kp);
};
struct kernel_param {
	const char *name;
	void *mod;
	const struct kernel_param_ops *ops;
	s16 level;
};
#define KERNEL_PARAM_OPS_FL_NOARG 1
static void kernel_param_lock(void *m) { (void)m; }
static void kernel_param_unlock(void *m) { (void)m; }
static bool param_check_unsafe(const struct kernel_param *kp) { (void)kp; return true; }

/* --- EFI stub context --------------------------------------------------- */
typedef unsigned long efi_status_t;
#define EFI_SUCCESS 0
#define EFI_LOADER_DATA 2
#define efi_bs_call(func, ...) efi_bs_##func(__VA_ARGS__)
static efi_status_t efi_bs_allocate_pool(int t, size_t n, void **p) { (void)t; *p = malloc(n); return EFI_SUCCESS; }
static efi_status_t efi_bs_free_pool(void *p) { free(p); return EFI_SUCCESS; }
#define CONSOLE_LOGLEVEL_QUIET 4
#define CONSOLE_LOGLEVEL_DEBUG 10
static bool efi_nokaslr, efi_noinitrd, efi_no5lvl, efi_nochunk, efi_novamap, efi_nosoftreserve, efi_disable_pci_dma;
static int efi_loglevel;
static int efi_mem_encrypt; /* efi_parse_options() sets it from Linux 6.10 on */
static void efi_parse_option_graphics(char *o) { (void)o; }
static const char *cmdline_memmap_override;
efi_status_t efi_parse_options(char const *cmdline);

/* --- kernel/crash_core.c context ---------------------------------------- */
enum { SUFFIX_HIGH = 0, SUFFIX_LOW, SUFFIX_NULL };
#include "gen/suffix_tbl.inc"

#include "gen/sysctl_alias.inc"
#include "gen/kfuncs.inc"
#include "gen/x86_cmdline.c"

/* ------------------------------------------------------------------------ */
static void hex(const char *s)
{
	if (!s || !*s) { fputs(" -", stdout); return; }
	putchar(' ');
	for (; *s; s++) printf("%02x", (unsigned char)*s);
}

static char *base;
static int group;
static int rec_cb(char *param, char *val, const char *doing, void *arg)
{
	(void)doing; (void)arg;
	printf("P %d %ld", group, (long)(param - base));
	hex(param);
	printf(" %d", val != NULL);
	hex(val);
	putchar('\n');
	return 0;
}

static void run(const char *line, size_t n, int nopts, char **opts)
{
	char *buf = malloc(n + 1), *r;
	memcpy(buf, line, n); buf[n] = 0;

	/* next_arg() through parse_args(), as start_kernel() and then the
	 * "Setting init args" pass run it. */
	base = strcpy(malloc(n + 1), buf);
	group = 0;
	r = parse_args("rec", base, NULL, 0, 0, 0, NULL, rec_cb);
	if (!IS_ERR_OR_NULL(r)) {
		group = 1;
		r = parse_args("rec", r, NULL, 0, 0, 0, NULL, rec_cb);
		if (!IS_ERR_OR_NULL(r)) {
			group = 2;
			while (!IS_ERR_OR_NULL(r) && *r)
				r = parse_args("rec", r, NULL, 0, 0, 0, NULL, rec_cb);
		}
	}
	free(base);

	/* Did a next_arg() call end inside a quote (odd number of '"' in the
	 * text it consumed)? */
	{
		char *c = strcpy(malloc(n + 1), buf), *a = skip_spaces(c), *p, *v;
		int q = 0;
		while (*a) {
			char *start = a;
			long k, cnt = 0;
			a = next_arg(a, &p, &v);
			for (k = start - c; k < a - c; k++) cnt += buf[k] == '"';
			if (cnt & 1) q = 1;
		}
		printf("Q %d\n", q);
		free(c);
	}

	for (int i = 0; i < nopts; i++) {
		const char *name = opts[i] + 2;
		if (opts[i][0] == 'b') {
			printf("B %s %d\n", name, cmdline_find_option_bool(buf, name));
		} else {
			static char arg[COMMAND_LINE_SIZE];
			int len = cmdline_find_option(buf, name, arg, sizeof(arg));
			printf("V %s %d", name, len);
			if (len >= 0) hex(arg);
			putchar('\n');
		}
	}

	cmdline_memmap_override = NULL;
	efi_nokaslr = efi_noinitrd = efi_no5lvl = efi_nochunk = efi_novamap = efi_nosoftreserve = false;
	efi_loglevel = 0;
	parse_options(buf);
	printf("S %s\n", cmdline_memmap_override ? cmdline_memmap_override : "-");
	printf("F %d %d %d %d %d %d %d\n", efi_nokaslr, efi_loglevel == CONSOLE_LOGLEVEL_QUIET, efi_noinitrd,
	       efi_no5lvl, efi_nochunk, efi_novamap, efi_nosoftreserve);

	{
		const char *sfx[] = { NULL, ",high", ",low" };
		for (int i = 0; i < 3; i++) {
			char *c = strcpy(malloc(n + 1), buf);
			char *p = get_last_crashkernel(c, "crashkernel=", sfx[i]);
			printf("C %s %ld\n", sfx[i] ? sfx[i] : "-", p ? (long)(p - c) : -1L);
			free(c);
		}
	}

	/* start_kernel(): "Booting kernel" then "Setting init args". */
	{
		char *sc = strcpy(malloc(n + 1), buf), *after;
		memset(argv_init, 0, sizeof(argv_init));
		memset(envp_init, 0, sizeof(envp_init));
		argv_init[0] = "init";
		envp_init[0] = "HOME=/";
		envp_init[1] = "TERM=linux";
		panic_later = panic_param = NULL;
		after = parse_args("Booting kernel", sc, NULL, 0, -1, -1, NULL, &unknown_bootoption);
		if (!IS_ERR_OR_NULL(after))
			parse_args("Setting init args", after, NULL, 0, -1, -1, NULL, set_init_arg);
		fputs("A", stdout);
		for (int i = 0; i < MAX_INIT_ARGS + 2 && argv_init[i]; i++) hex(argv_init[i]);
		fputs("\nN", stdout);
		for (int i = 0; i < MAX_INIT_ENVS + 2 && envp_init[i]; i++) hex(envp_init[i]);
		printf("\nX %s\n", panic_later ? panic_later : "-");
		free(sc);
	}
	puts("END");
	free(buf);
}

int main(int argc, char **argv)
{
	unsigned char hdr[4];
	static char line[1 << 16];
	while (fread(hdr, 1, 4, stdin) == 4) {
		size_t n = hdr[0] | hdr[1] << 8 | hdr[2] << 16 | (size_t)hdr[3] << 24;
		if (n >= sizeof(line) || fread(line, 1, n, stdin) != n) return 2;
		run(line, n, argc - 1, argv + 1);
		fflush(stdout);
	}
	return 0;
}
