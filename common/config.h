/* The rtvio configuration: one INI file (DESIGN.md §Configuration, docs/config.md)
 * read once at start-up by the broker, the cells, `rtvio analyze` and `rtvio demo`.
 *
 * Everything here is plain data, fully validated and cross-checked by the loader, with
 * every default already applied and every unit already converted (sizes in bytes,
 * times in nanoseconds, bandwidth in bytes per second). Consumers never re-parse or
 * re-check a value. Cells and flows refer to each other by index into the arrays of
 * struct rtvio_config. The loader allocates (start-up only); rtvio_config_free()
 * releases everything.
 *
 * Errors: functions return 0 or a negative errno, and on failure write one line into
 * the caller's buffer naming file, line, section, key and what was expected, e.g.
 *   demo.conf:12: [flow control] key 'perod': unknown key (expected one of: from, ...)
 */
#ifndef RTVIO_COMMON_CONFIG_H
#define RTVIO_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Names of cells, flows and workloads: [A-Za-z0-9_-], starting with a letter or
 * digit, at most RTVIO_NAME_MAX - 1 characters (they become socket file names). */
#define RTVIO_NAME_MAX 32
/* sizeof(sockaddr_un.sun_path): the loader checks that <socket_dir>/<cell>.sock and
 * <socket_dir>/control.sock fit. */
#define RTVIO_PATH_MAX 108
/* Generous bounds for the scale benchmark (64 cells, 640 flows) and beyond. */
#define RTVIO_MAX_CELLS 1024
#define RTVIO_MAX_FLOWS 16384
/* Largest flow or workload message size, and largest time value, accepted. */
#define RTVIO_MAX_MSG_SIZE (1ull << 30)          /* 1 GiB */
#define RTVIO_MAX_TIME_NS (3600ull * 1000000000) /* 1 hour */
/* vsock CIDs 0..2 are reserved (hypervisor, local, host), 0xffffffff is "any". */
#define RTVIO_MIN_CID 3u
/* The CID of the [host NAME] pseudo-cell, as Linux's VMADDR_CID_HOST. */
#define RTVIO_HOST_CID 2u
/* Longest uds_path: <uds_path>_<port> (up to 10 digits) must fit a sun_path. */
#define RTVIO_UDS_PATH_MAX (RTVIO_PATH_MAX - 12)
/* [cell] connections: its default and largest value. */
#define RTVIO_CONNECTIONS_DEFAULT 256u
/* [cell] allowance: packets per budget period beyond what the cell's flows need
 * (connection set-up, RSTs, best-effort traffic); its default and largest value. */
#define RTVIO_ALLOWANCE_DEFAULT 1u
/* [broker] budget_period: the period of the per-cell budgets (docs/broker.md,
 * "Per-cell budgets"), its default and range. */
#define RTVIO_BUDGET_PERIOD_DEFAULT_NS 1000000ull
#define RTVIO_BUDGET_PERIOD_MIN_NS 100000ull
#define RTVIO_BUDGET_PERIOD_MAX_NS 1000000000ull
#define RTVIO_ALLOWANCE_MAX 65535u
#define RTVIO_CONNECTIONS_MAX 65535u
/* flow.from_port when any source port will do. Ports run from 1 to 0xfffffffe:
 * 0xffffffff is Linux's VMADDR_PORT_ANY and cannot be configured. */
#define RTVIO_PORT_ANY 0u
/* A VM cell's image path and its bare-metal command line (config_vm.c). */
#define RTVIO_IMAGE_MAX 256
#define RTVIO_ARGS_MAX 512
/* [remote NAME] sections (config_remote.c, docs/gateway.md). */
#define RTVIO_MAX_REMOTES 64
#define RTVIO_PEERS_MAX 192
#define RTVIO_DDS_DOMAIN_MAX 230u

enum rtvio_policy {
	RTVIO_POLICY_FP,   /* limited-preemptive fixed priority */
	RTVIO_POLICY_EDF,  /* earliest absolute deadline first */
	RTVIO_POLICY_FIFO, /* arrival order (baseline) */
};

/* How the broker's copy engine writes payload into a receiver's RX buffers. */
enum rtvio_copy {
	RTVIO_COPY_NORMAL, /* memcpy: ordinary (cached) stores */
	RTVIO_COPY_NT,     /* non-temporal stores that bypass the broker's cache (x86-64;
			    * memcpy elsewhere) */
};

/* [platform] vhost_user_msg and vhost_user_map when absent (docs/config.md: the
 * measurements they are conservative against). */
#define RTVIO_PLAT_VHU_MSG_DEFAULT_NS 4000ull
#define RTVIO_PLAT_VHU_MAP_DEFAULT_NS 40000ull

/* [broker] vhost_user_budget and vhost_user_maps: defaults and limits. */
#define RTVIO_VHU_MSGS_DEFAULT 8u
#define RTVIO_VHU_PERIOD_DEFAULT_NS 5000000ull
#define RTVIO_VHU_MAPS_DEFAULT 1u
#define RTVIO_VHU_MAP_PERIOD_DEFAULT_NS 10000000ull
/* vhost_user_total and vhost_user_total_maps: the broker-wide buckets, twice one
 * cell's, so that one cell's handshake on an idle broker meets only its own. */
#define RTVIO_VHU_TOTAL_MSGS_DEFAULT 16u
#define RTVIO_VHU_TOTAL_MAPS_DEFAULT 2u
#define RTVIO_VHU_MSGS_MAX 1024u
#define RTVIO_VHU_PERIOD_MIN_NS 100000ull

/* Data-plane cores a broker may run ([broker] cpus). */
#define RTVIO_MAX_BROKER_CORES 8

struct rtvio_broker_cfg {
	enum rtvio_policy policy;     /* default fp */
	uint64_t chunk;               /* bytes, > 0; default 4 KiB */
	char socket_dir[RTVIO_PATH_MAX]; /* absolute: a relative one is resolved against the
				       * config file's directory; default /tmp/rtvio */
	int cpu;                      /* -1 = unpinned (default); cpus[0] when cpus is given */
	/* cpus = 1,2,...: one data-plane thread pinned to each (a multi-core broker,
	 * docs/broker.md "Several cores"); absent: ncores = 1 and cpus[0] = cpu. */
	int ncores;
	int cpus[RTVIO_MAX_BROKER_CORES];
	/* copy_slots = K: at most K cores copy at once (the k-exclusion lock around the
	 * copy, docs/broker.md "Several cores"), 1..ncores; absent: ncores (a config built in code may
	 * leave 0: ncores). */
	int copy_slots;
	int rt_priority;              /* SCHED_FIFO 1..99; 0 = none (default) */
	bool poll;                    /* default no: sleep on kicks */
	bool default_best_effort;     /* default = best-effort; false = deny (default) */
	uint64_t regulation_budget;   /* bytes per period; 0 = unregulated (default) */
	uint64_t regulation_period_ns; /* > 0; default 1 ms */
	/* The per-cell budgets' period, RTVIO_BUDGET_PERIOD_MIN_NS..MAX_NS; default
	 * 1 ms (a config built in code may leave 0: the default). */
	uint64_t budget_period_ns;
	enum rtvio_copy copy;         /* default normal */
	bool pm_qos;                  /* hold idle cpus awake (platform/pmqos.h); default yes */
	/* Slots for cells and flows a running broker may hold, added at run time
	 * (`rtvio cell|flow add`); 0 = the number configured (default: no room). */
	int max_cells, max_flows;
	/* The vhost-user work the broker's loop does for one cell (vhost_user_budget =
	 * MSGS/PERIOD, vhost_user_maps = HEAVY/PERIOD; docs/broker.md "vhost-user
	 * budget"): token buckets of vhu_msgs messages per vhu_period_ns and of vhu_maps
	 * heavy ones (memory-table changes, device stops) per vhu_map_period_ns. */
	uint32_t vhu_msgs, vhu_maps;
	uint64_t vhu_period_ns, vhu_map_period_ns;
	/* ... and for all cells together (vhost_user_total = MSGS/PERIOD,
	 * vhost_user_total_maps = HEAVY/PERIOD): one pair of buckets the whole loop
	 * draws on besides each cell's, served round robin when short. */
	uint32_t vhu_total_msgs, vhu_total_maps;
	uint64_t vhu_total_period_ns, vhu_total_map_period_ns;
	int line;                     /* line of [broker], 0 when absent */
	int socket_dir_line;          /* line of socket_dir, 0 when it is the default: for
				       * messages about the directory (config.path:line) */
};

/* What a vm = yes cell boots (scripts/vm/launch starts it; the broker does not care). */
enum rtvio_vm_arch { RTVIO_ARCH_X86_64, RTVIO_ARCH_AARCH64, RTVIO_ARCH_RISCV64 };
enum rtvio_vm_kind {
	RTVIO_VM_LINUX,     /* the Linux guest of scripts/vm/build-image (virtio-pci) */
	RTVIO_VM_BAREMETAL, /* baremetal/'s image for arch (virtio-mmio) */
};

/* A VM cell's launch settings; all optional (config_vm.c, docs/baremetal.md). */
struct rtvio_vm_cfg {
	enum rtvio_vm_arch arch;     /* default x86_64 */
	enum rtvio_vm_kind kind;     /* default linux */
	char image[RTVIO_IMAGE_MAX]; /* "" = the built image for kind and arch */
	char args[RTVIO_ARGS_MAX];   /* bare-metal command line words; "" = none */
	uint64_t cpu_quota_ns;       /* cpu_max: CPU time per cpu_period_ns; 0 = unbounded */
	uint64_t cpu_period_ns;
};

struct rtvio_cell_cfg {
	char name[RTVIO_NAME_MAX];
	uint32_t cid;       /* >= 3, != 0xffffffff, unique; required */
	bool vm;            /* a QEMU guest rather than a process cell; default no */
	uint64_t region;    /* communication region of a process cell; default 2 MiB */
	uint64_t memory;    /* guest RAM of a vm cell; default 256 MiB */
	uint64_t rx_buf;    /* payload bytes per RX buffer the cell posts; default 4 KiB */
	uint64_t max_packet; /* largest TX packet payload the cell sends; default 64 KiB */
	int cpu;            /* core `rtvio cell` pins the cell to; -1 = unpinned (default) */
	int broker_core;    /* index into [broker] cpus of the data-plane core that serves
			     * the flows delivered to this cell; -1 = the model assigns it
			     * (model_cell_core; default) */
	int rt_priority;    /* SCHED_FIFO priority of the cell's real-time threads (periodic
			     * senders, receivers of real-time flows); 0 = none (default) */
	uint32_t poll_us;   /* `rtvio cell`: a blocking call spins this long on the used
			     * rings before it sleeps; 0 = sleep at once (default) */
	uint32_t connections; /* connections the cell may have opened at once (its share
			       * of the broker's table, so that one cell's flood of
			       * requests leaves the others theirs); 1..65535, default 256 */
	uint32_t allowance; /* packets ingested, control packets and short RX pieces per
			     * budget period beyond its flows' needs (model.h); 1..65535,
			     * default 1 */
	struct rtvio_vm_cfg vmc; /* vm cells only */
	int line;           /* line of the [cell NAME] header */
	/* A free slot of a running broker's configuration (broker/live.h): no cell
	 * here. The loader never sets it; only the broker's own copy has such slots. */
	bool vacant;
	/* A [host NAME] section: programs on the host behind Unix sockets, joined to the
	 * flows by the broker itself (broker/host.c, docs/broker.md "Host endpoints").
	 * Such a cell has cid 2 (VMADDR_CID_HOST), no vhost-user socket, and uds_path:
	 * host programs connect to it; a cell's connection to port P goes to
	 * <uds_path>_P. At most one per configuration (one CID 2). */
	bool host;
	char uds_path[RTVIO_PATH_MAX];
};

enum rtvio_sock_type {
	RTVIO_STREAM,
	RTVIO_SEQPACKET,
};

/* What a cell runs for a flow under `rtvio cell` / `rtvio demo`. */
enum rtvio_pattern {
	RTVIO_PATTERN_PERIODIC, /* one message of `size` bytes every `period` */
	RTVIO_PATTERN_BULK,     /* messages of `size` bytes as fast as credit allows */
	RTVIO_PATTERN_OFF,      /* no sender (and no receiver) for this flow */
};

/* The traffic actually generated for a flow: the flow's own declaration unless a
 * [workload] section overrides it. Always filled in by the loader. */
struct rtvio_traffic {
	enum rtvio_pattern pattern; /* default periodic (real-time), bulk (best-effort) */
	uint64_t size;              /* bytes per message; default the flow's size */
	uint64_t period_ns;         /* periodic only; default the flow's period */
	uint64_t offset_ns;         /* delay before the first message; default 0 */
	uint64_t count;             /* messages to send; 0 = until stopped (default) */
	int workload;               /* index into cfg->workloads, -1 = implied */
};

/* A flow with one end on another broker (`to = BROKER/CELL:PORT` or
 * `from = BROKER/CELL[:PORT]`). Locally it runs between its local cell and the
 * remote's gateway cell, so `from`/`to` of the flow name that gateway cell. */
struct rtvio_flow_remote {
	int remote;              /* index into cfg->remotes; -1 = both ends local */
	bool incoming;           /* the far end sends (from = BROKER/CELL) */
	char cell[RTVIO_NAME_MAX]; /* the far end's cell, on the remote broker */
	uint32_t port;           /* outgoing: its listening port (also the port the flow
				  * has on the gateway cell); incoming: its source port
				  * or RTVIO_PORT_ANY */
};

/* A [remote NAME] section: another broker reached over DDS through a gateway cell. */
struct rtvio_remote_cfg {
	char name[RTVIO_NAME_MAX];
	int gateway;                 /* the local gateway cell (index); required, own */
	uint32_t domain;             /* DDS domain id 0..230; default 0 */
	char peers[RTVIO_PEERS_MAX]; /* unicast discovery peers, space-separated
				      * addresses; default 127.0.0.1 */
	uint64_t network_budget_ns;  /* declared one-way network time; required */
	uint64_t remote_bound_ns;    /* the remote broker's bound to its cell (what its
				      * `rtvio analyze` says); 0 = not given */
	int line;
};

struct rtvio_flow_cfg {
	char name[RTVIO_NAME_MAX];
	int from, to;           /* cell indexes; required (`from = cell[:port]`) */
	uint32_t from_port;     /* RTVIO_PORT_ANY (0) = any source port (default) */
	uint32_t to_port;       /* the listening port; required, 1..0xfffffffe */
	enum rtvio_sock_type type; /* default stream */
	uint64_t size;          /* bytes per message (seqpacket) or per period (stream); required, > 0 */
	bool best_effort;       /* class = best-effort; default real-time */
	/* Real-time flows only (zero for best-effort ones): */
	uint64_t period_ns;     /* minimum inter-arrival time; required, > 0 */
	uint64_t deadline_ns;   /* relative deadline; default the period; may exceed it */
	uint64_t jitter_ns;     /* release jitter; default 0 */
	int priority;           /* 1 = highest; 0 = unset (deadline-monotonic) */
	struct rtvio_traffic traffic;
	struct rtvio_flow_remote rem; /* the far end when it is on another broker */
	int line;               /* line of the [flow NAME] header */
	bool vacant;            /* a free slot of a running broker's configuration, as
				 * for cells */
};

/* A [workload NAME] section as written; its effect is already folded into the
 * named flow's `traffic`. Kept for messages and round trips. */
struct rtvio_workload_cfg {
	char name[RTVIO_NAME_MAX];
	int flow;           /* flow index; required */
	enum rtvio_pattern pattern;
	uint64_t size, period_ns, offset_ns, count;
	unsigned set;       /* RTVIO_WL_* bits: which keys were given */
	int line;
};

enum {
	RTVIO_WL_PATTERN = 1u << 0,
	RTVIO_WL_SIZE = 1u << 1,
	RTVIO_WL_PERIOD = 1u << 2,
	RTVIO_WL_OFFSET = 1u << 3,
	RTVIO_WL_COUNT = 1u << 4,
};

/* Platform costs for `rtvio analyze`, as measured by `rtvio calibrate`. A value is
 * meaningful only when its RTVIO_PLAT_* bit is set in `present`. */
enum {
	RTVIO_PLAT_COPY_BANDWIDTH = 1u << 0,
	RTVIO_PLAT_CHUNK_OVERHEAD = 1u << 1,
	RTVIO_PLAT_PACKET_OVERHEAD = 1u << 2,
	RTVIO_PLAT_INGEST_LATENCY = 1u << 3,
	RTVIO_PLAT_NOTIFY_LATENCY = 1u << 4,
	RTVIO_PLAT_INGEST_STEP = 1u << 5,
	RTVIO_PLAT_BATCH_GAP = 1u << 6,
	/* The seven values `rtvio analyze` requires. */
	RTVIO_PLAT_ALL = (1u << 7) - 1,
	/* Optional: without it a run-time change's apply step is not charged. */
	RTVIO_PLAT_CHANGE_STEP = 1u << 7,
	/* Optional (defaults RTVIO_PLAT_VHU_*_DEFAULT_NS when absent): */
	RTVIO_PLAT_VHOST_USER_MSG = 1u << 8,
	RTVIO_PLAT_VHOST_USER_MAP = 1u << 9,
	/* Optional: without it a core's completion under the data plane's mutex is
	 * charged all of packet_overhead (docs/analysis.md, "Several cores"). */
	RTVIO_PLAT_WAKE_WRITE = 1u << 10,
	/* page_fault (1u << 11) is gone: cfg_platform_removed says why. */
};

struct rtvio_platform_cfg {
	uint64_t copy_bandwidth;  /* bytes per second, > 0 */
	uint64_t chunk_overhead;  /* ns */
	uint64_t packet_overhead; /* ns */
	uint64_t ingest_latency;  /* ns */
	uint64_t notify_latency;  /* ns */
	uint64_t ingest_step;     /* ns */
	uint64_t batch_gap;       /* ns */
	uint64_t change_step;     /* ns per slot visit of a run-time change's apply step */
	/* The broker loop's vhost-user work (docs/analysis.md "vhost-user budget"): one
	 * Defaults RTVIO_PLAT_VHU_*_DEFAULT_NS when the file gives none. */
	uint64_t vhost_user_msg;  /* ns: a message that is not heavy */
	uint64_t vhost_user_map;  /* ns: a heavy one (up to 8 mmap and munmap calls, a
				   * device stop and start) */
	uint64_t wake_write;      /* ns: one notification that wakes a waiting cell (a part
				   * of packet_overhead, which holds two of them) */
	unsigned present;         /* RTVIO_PLAT_* bits */
	int line;                 /* line of [platform], 0 when absent */
	char path[256];           /* file it came from, "" when none */
};

struct rtvio_config {
	struct rtvio_broker_cfg broker;
	struct rtvio_cell_cfg *cells;
	int ncells;
	struct rtvio_flow_cfg *flows;
	int nflows;
	struct rtvio_workload_cfg *workloads;
	int nworkloads;
	struct rtvio_platform_cfg platform;
	struct rtvio_remote_cfg *remotes;
	int nremotes;
	char path[256];           /* the file loaded (as given) */
};

/* Load and validate PATH. On success fills *cfg (free with rtvio_config_free());
 * on failure leaves *cfg empty (safe to free) and writes one line into err. */
int rtvio_config_load(const char *path, struct rtvio_config *cfg, char *err, size_t errlen);
/* The same from a string in memory; NAME stands for the file name in messages. */
int rtvio_config_parse(const char *text, const char *name, struct rtvio_config *cfg,
		       char *err, size_t errlen);
void rtvio_config_free(struct rtvio_config *cfg);

/* Read only the [platform] section of PATH (other sections are ignored, so a full
 * config or a file written by `rtvio calibrate` both work). Keys missing from the
 * section are simply absent from plat->present; a file with no [platform] section at
 * all is an error (-ENOENT, naming the file). */
int rtvio_platform_load(const char *path, struct rtvio_platform_cfg *plat, char *err,
			size_t errlen);
/* Writes the names of the required platform keys (RTVIO_PLAT_ALL) missing from plat
 * ("copy_bandwidth, ingest_step") into buf; returns how many are missing. */
int rtvio_platform_missing(const struct rtvio_platform_cfg *plat, char *buf, size_t len);
/* Writes a [platform] section that rtvio_platform_load() reads back identically. */
int rtvio_platform_write(FILE *f, const struct rtvio_platform_cfg *plat);

/* Index of the cell / flow, or -ENOENT. */
int rtvio_config_find_cell(const struct rtvio_config *cfg, const char *name);
int rtvio_config_find_cell_by_cid(const struct rtvio_config *cfg, uint32_t cid);
int rtvio_config_find_flow(const struct rtvio_config *cfg, const char *name);
int rtvio_config_find_remote(const struct rtvio_config *cfg, const char *name);
/* The flow that permits a connection from (from_cell, from_port) to (to_cell, to_port),
 * or -ENOENT. The loader guarantees at most one matches. A linear scan: for set-up. */
int rtvio_config_match_flow(const struct rtvio_config *cfg, int from_cell, uint32_t from_port,
			    int to_cell, uint32_t to_port);

/* Writes the whole configuration as INI with every default spelled out; loading the
 * output gives an identical configuration. */
int rtvio_config_dump(const struct rtvio_config *cfg, FILE *f);
/* Its parts for remotes (config_remote.c): every [remote] section, and one end of a
 * flow as written (CELL[:PORT], or BROKER/CELL[:PORT] for the far end). */
int rtvio_dump_remotes(const struct rtvio_config *cfg, FILE *f);
int rtvio_dump_flow_end(const struct rtvio_config *cfg, const struct rtvio_flow_cfg *fl,
			bool to, FILE *f);

const char *rtvio_policy_name(enum rtvio_policy p);     /* "fp", "edf", "fifo" */
int rtvio_policy_parse(const char *s, enum rtvio_policy *p); /* 0 or -EINVAL */
const char *rtvio_copy_name(enum rtvio_copy c);         /* "normal", "nt" */
const char *rtvio_sock_type_name(enum rtvio_sock_type t); /* "stream", "seqpacket" */
const char *rtvio_pattern_name(enum rtvio_pattern p);     /* "periodic", "bulk", "off" */
const char *rtvio_vm_arch_name(enum rtvio_vm_arch a);     /* "x86_64", "aarch64", "riscv64" */
const char *rtvio_vm_kind_name(enum rtvio_vm_kind k);     /* "linux", "baremetal" */

#endif
