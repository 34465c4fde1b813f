/* A VM cell's launch keys: arch, kind, image, args, cpu_max. The broker ignores
 * them (it serves a vhost-user socket whatever boots behind it); scripts/vm/launch
 * and `make hetdemo` start the VM from them (docs/baremetal.md). Kept apart from
 * config_cell.c so that the cell's own keys and these change independently. */
#include "config_int.h"
#include "units.h"

#include <string.h>

static const char *const arch_words[] = { "x86_64", "aarch64", "riscv64", NULL };
static const char *const kind_words[] = { "linux", "baremetal", NULL };

/* 100 ms: the period a percentage is a share of (the CFS default's order). */
#define CPU_MAX_PCT_PERIOD_NS 100000000ull
/* cgroup cpu.max takes a period from 1 ms to 1 s and a quota of at least 1 ms. */
#define CPU_MAX_MIN_NS 1000000ull
#define CPU_MAX_MAX_PERIOD_NS 1000000000ull

static int copy_string(const struct keyctx *k, char *dst, size_t len)
{
	size_t n = strlen(k->value);

	if (cfg_text_value(k))
		return k->ps->ret;
	if (n == 0 || n >= len)
		return cfg_key_fail(k, "'%s': expected 1 to %zu characters", k->value, len - 1);
	memcpy(dst, k->value, n + 1);
	return 0;
}

/* "50%" (of 100 ms) or "QUOTA/PERIOD" ("5ms/10ms"): the budget cgroup cpu.max
 * enforces per period. */
static int get_cpu_max(const struct keyctx *k, struct rtvio_vm_cfg *v)
{
	const char *why = NULL, *slash = strchr(k->value, '/');
	size_t n = strlen(k->value);
	char quota[32];
	long long pct;

	if (n > 1 && k->value[n - 1] == '%' && n < sizeof(quota)) {
		memcpy(quota, k->value, n - 1);
		quota[n - 1] = '\0';
		if (rtvio_parse_int(quota, 1, 100, &pct, &why))
			return cfg_key_fail(k, "'%s': expected a percentage from 1%% to 100%%", k->value);
		v->cpu_period_ns = CPU_MAX_PCT_PERIOD_NS;
		v->cpu_quota_ns = CPU_MAX_PCT_PERIOD_NS / 100 * (uint64_t)pct;
		return 0;
	}
	if (!slash || (size_t)(slash - k->value) >= sizeof(quota))
		return cfg_key_fail(k, "'%s': expected a share such as 50%% or a budget such as "
				    "5ms/10ms", k->value);
	memcpy(quota, k->value, (size_t)(slash - k->value));
	quota[slash - k->value] = '\0';
	if (rtvio_parse_time(quota, RTVIO_NS_PER_S, &v->cpu_quota_ns, &why) ||
	    rtvio_parse_time(slash + 1, RTVIO_NS_PER_S, &v->cpu_period_ns, &why))
		return cfg_bad_value(k, why);
	if (v->cpu_period_ns < CPU_MAX_MIN_NS || v->cpu_period_ns > CPU_MAX_MAX_PERIOD_NS ||
	    v->cpu_quota_ns < CPU_MAX_MIN_NS || v->cpu_quota_ns > v->cpu_period_ns)
		return cfg_key_fail(k, "'%s': expected a period from 1ms to 1s and a budget from "
				    "1ms to the period", k->value);
	return 0;
}

int cfg_vm_key(struct parser *ps, const struct keyctx *k, int key)
{
	struct rtvio_vm_cfg *v = &ps->cfg->cells[ps->index].vmc;
	int w;

	switch (key) {
	case CK_ARCH:
		if (cfg_get_word(k, arch_words, &w))
			return ps->ret;
		v->arch = (enum rtvio_vm_arch)w;
		return 0;
	case CK_KIND:
		if (cfg_get_word(k, kind_words, &w))
			return ps->ret;
		v->kind = (enum rtvio_vm_kind)w;
		return 0;
	case CK_IMAGE:
		return copy_string(k, v->image, sizeof(v->image));
	case CK_ARGS:
		return copy_string(k, v->args, sizeof(v->args));
	case CK_CPU_MAX:
		return get_cpu_max(k, v);
	}
	return 0;
}

int cfg_check_vm_keys(struct parser *ps, int i)
{
	static const int keys[] = { CK_ARCH, CK_KIND, CK_IMAGE, CK_ARGS, CK_CPU_MAX };
	const struct rtvio_cell_cfg *c = &ps->cfg->cells[i];
	const struct raw *r = &ps->cell_raw[i];

	for (size_t j = 0; j < sizeof(keys) / sizeof(keys[0]); j++)
		if (!c->vm && (r->set & (1u << keys[j])))
			return cfg_fail(ps, r->key_line[keys[j]], "[cell %s] key '%s': applies to vm "
					"cells only (add vm = yes)", c->name, cfg_cell_keys[keys[j]]);
	/* The Linux image is built for x86_64 only (scripts/vm/build-image). */
	if (c->vmc.kind == RTVIO_VM_LINUX && c->vmc.arch != RTVIO_ARCH_X86_64)
		return cfg_fail(ps, r->key_line[CK_ARCH], "[cell %s] key 'arch': Linux guests "
				"are x86_64 only (use kind = baremetal for %s)", c->name,
				rtvio_vm_arch_name(c->vmc.arch));
	if (c->vmc.kind == RTVIO_VM_LINUX && (r->set & (1u << CK_ARGS)))
		return cfg_fail(ps, r->key_line[CK_ARGS], "[cell %s] key 'args': applies to "
				"kind = baremetal only (a Linux guest runs its flows' jobs)", c->name);
	return 0;
}

const char *rtvio_vm_arch_name(enum rtvio_vm_arch a)
{
	return (unsigned)a < sizeof(arch_words) / sizeof(arch_words[0]) - 1 ? arch_words[a] : "?";
}

const char *rtvio_vm_kind_name(enum rtvio_vm_kind k)
{
	return (unsigned)k < sizeof(kind_words) / sizeof(kind_words[0]) - 1 ? kind_words[k] : "?";
}
