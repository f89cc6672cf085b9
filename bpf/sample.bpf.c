// SPDX-License-Identifier: GPL-2.0
/* sample.bpf.c - samples kernel and user stacks on a perf event on every CPU,
 * streams them to userspace over a ring buffer, and notifies exec/exit so that
 * userspace can read a process's mappings while it lives. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "sample.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load. */
const volatile bool filter_pids = false;   /* sample only tgids in `targets` */
const volatile bool filter_tids = false;   /* sample only tids in `target_tids` */
const volatile bool follow_children = false; /* add forked children of targets */
const volatile bool skip_idle = true;      /* ignore the idle task (pid 0) */
const volatile bool walk_python = true;    /* walk CPython frames of py_procs */
const volatile bool kernel_stacks = true;  /* collect kernel stacks */
const volatile bool thread_tags = true;    /* read libdynotag thread tags */
const volatile bool counting = false;      /* exact per-thread CPU time and counters */
const volatile bool counter_open[COUNTER_SLOTS] = {}; /* slots with a counting event */
/* Sampling on the scheduler tick: the tick's hrtimer function (0: not
 * sampling on the tick) and the sampling period in ns. */
const volatile __u64 tick_function = 0;
const volatile __u64 tick_sample_ns = 10000000;
/* Set by the loader once the programs are attached (CLOCK_MONOTONIC ns): the
 * start of exact counting. 0 until then: nothing is counted. */
volatile __u64 counting_since_ns = 0;
/* glibc pthread_getspecific layout, calibrated by userspace. */
const volatile struct py_tls_layout tls = { .specific_1stblock = 0x310, .entry_size = 16,
					    .data_offset = 8 };

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024); /* resized by the loader */
} events SEC(".maps");

/* Process ids to sample when filter_pids (value unused). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

/* Thread ids to sample when filter_tids. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} target_tids SEC(".maps");

/* Per-CPU loss counters indexed by enum profile_drop_reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_REASON_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Python processes (key: tgid), filled by userspace at discovery. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct py_proc);
} py_procs SEC(".maps");

/* Structure offsets per CPython version (enum py_version_index). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PY_VERSION_COUNT);
	__type(key, __u32);
	__type(value, struct py_offsets);
} py_versions SEC(".maps");

/* Bytes of a frame read at once: covers every field the walker uses in every
 * version (the largest offset is 3.10's f_lasti at 96). */
#define PY_FRAME_CHUNK 128

/* Processes using libdynotag (key: tgid), filled by userspace at discovery. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct tag_proc);
} tag_procs SEC(".maps");

/* Per-CPU Python frames of the sample being built. */
struct py_frames_buf {
	struct py_frame frames[PY_MAX_FRAMES]; /* innermost first */
	__u8 chunk[PY_FRAME_CHUNK];            /* the frame being decoded */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_frames_buf);
} py_scratch SEC(".maps");

/* Counting events, one per CPU and slot (filled by userspace). */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 1); /* resized to the CPU count by the loader */
} counter_primary SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 1);
} counter_cycles SEC(".maps");

/* Per-thread exact accounting, in task-local storage: reached from the task
 * pointer without a hash lookup, freed with the task. Holds each thread's CPU
 * time baseline and, while counting events are open, its counter sums.
 * Exited threads are flushed to userspace at exit; live ones are read at the
 * end through the dump_task_counts iterator. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_counts);
} task_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_checkpoint);
} checkpoints SEC(".maps");

/* Per-CPU scratch record: too large for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct profile_sample_event);
} scratch SEC(".maps");

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &reason);
	if (n)
		*n += 1;
}

/* Processes sampled recently (LRU): the first sample of a process wakes the
 * reader at once, so it reads the process's mappings while it lives. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} seen_pids SEC(".maps");

/* Waking the reader on every record costs an irq_work per sample (it was most
 * of the program's cost); userspace drains every POLL interval anyway, so wake
 * it only for news (a new process, an exec) or once a backlog builds up. */
#define WAKEUP_BACKLOG_BYTES (256 * 1024)

static __always_inline __u64 wakeup_flags(bool news)
{
	if (news || bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > WAKEUP_BACKLOG_BYTES)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* Returns true the first time pid is seen (since it was last evicted). */
static __always_inline bool first_sight(__u32 pid)
{
	__u8 one = 1;
	if (bpf_map_lookup_elem(&seen_pids, &pid))
		return false;
	bpf_map_update_elem(&seen_pids, &pid, &one, BPF_ANY);
	return true;
}

static __always_inline bool is_target(__u32 pid, __u32 tid)
{
	if (filter_pids && !bpf_map_lookup_elem(&targets, &pid))
		return false;
	if (filter_tids && !bpf_map_lookup_elem(&target_tids, &tid))
		return false;
	return true;
}

static __always_inline void fill_header(struct profile_event_header *h, __u32 type,
					__u32 pid, __u32 tid)
{
	h->type = type;
	h->pid = pid;
	h->tid = tid;
	h->cpu = bpf_get_smp_processor_id();
	h->time_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/* State of one Python walk, shared with the bpf_loop callback. */
struct py_walk {
	__u64 frame;        /* next frame to visit; 0 ends the walk */
	struct py_offsets o;/* the interpreter's offsets (a copy: no lookup per frame) */
	__u32 n;            /* frames emitted */
	__u32 status;       /* enum py_walk_status */
};

static __always_inline int read_user_u64(__u64 addr, __u64 *out)
{
	return bpf_probe_read_user(out, sizeof(*out), (const void *)addr);
}

static int py_walk_step(__u32 index, struct py_walk *w)
{
	__u32 zero = 0;
	if (!w->frame)
		return 1;
	struct py_frames_buf *buf = bpf_map_lookup_elem(&py_scratch, &zero);
	if (!buf)
		return 1;
	const struct py_offsets *o = &w->o;

	/* One read of the whole frame header, then fields from the copy; a frame
	 * at the very end of a mapping falls back to one read per field. */
	__u64 frame = w->frame, code = 0, previous = 0, instr = 0;
	__u8 owner = 0;
	__s32 lasti = 0;
	if (!bpf_probe_read_user(buf->chunk, PY_FRAME_CHUNK, (const void *)frame)) {
		code = *(__u64 *)(buf->chunk + (o->frame_code & 0x78));
		previous = *(__u64 *)(buf->chunk + (o->frame_previous & 0x78));
		if (o->frame_owner >= 0)
			owner = buf->chunk[o->frame_owner & 0x7f];
		if (o->instr_kind == PY_INSTR_POINTER)
			instr = *(__u64 *)(buf->chunk + (o->frame_instr & 0x78));
		else
			lasti = *(__s32 *)(buf->chunk + (o->frame_instr & 0x7c));
	} else {
		if (read_user_u64(frame + o->frame_code, &code) ||
		    read_user_u64(frame + o->frame_previous, &previous))
			goto fault;
		if (o->frame_owner >= 0 &&
		    bpf_probe_read_user(&owner, 1, (const void *)(frame + o->frame_owner)))
			goto fault;
		if (o->instr_kind == PY_INSTR_POINTER) {
			if (read_user_u64(frame + o->frame_instr, &instr))
				goto fault;
		} else if (bpf_probe_read_user(&lasti, sizeof(lasti),
					       (const void *)(frame + o->frame_instr))) {
			goto fault;
		}
	}
	w->frame = previous;
	if (o->frame_owner >= 0 && owner == o->owner_cstack)
		return 0; /* C-stack shim frame: no Python code */
	if (!code)
		return 0;
	/* A Python frame past the limits (frames kept, or the steps, which
	 * shims use up too): the stack is cut. The last steps only look, so a
	 * tail of shims (3.12's bottom entry frame) is not taken for one. */
	if (w->n >= PY_MAX_FRAMES || index >= PY_WALK_STEPS) {
		w->status = PY_WALK_TRUNCATED;
		return 1;
	}
	instr = o->instr_kind == PY_INSTR_POINTER ? instr - code : (__u64)(__u32)lasti;

	__s32 firstlineno = 0;
	if (bpf_probe_read_user(&firstlineno, sizeof(firstlineno),
				(const void *)(code + o->code_firstlineno)))
		goto fault;

	__u32 n = w->n;
	if (n >= PY_MAX_FRAMES)
		return 1;
	buf->frames[n].code = code;
	buf->frames[n].instr = (__u32)instr;
	buf->frames[n].firstlineno = firstlineno;
	w->n = n + 1;
	return 0;
fault:
	w->status = PY_WALK_READ_ERROR;
	return 1;
}

/* Reads the value glibc's pthread_getspecific(key) would return in the current
 * thread (keys < 32 only: the first-level block). */
static __always_inline int read_thread_specific(__u32 key, __u64 *value)
{
	if (key >= 32)
		return -1;
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 fsbase = BPF_CORE_READ(task, thread.fsbase);
	if (!fsbase)
		return -1;
	return read_user_u64(fsbase + tls.specific_1stblock + (__u64)key * tls.entry_size +
			     tls.data_offset, value);
}

/* Copies the thread's dynotag record into the sample, under its sequence
 * counter: a record being written (odd seq, or seq changed during the copy) is
 * reported as TAG_READ_RACE, never as tags the thread did not hold. */
static __always_inline void read_thread_tags(__u32 pid, struct profile_sample_event *e)
{
	e->tag_status = TAG_READ_NONE;
	e->tag_count = 0;
	if (!thread_tags)
		return;
	struct tag_proc *proc = bpf_map_lookup_elem(&tag_procs, &pid);
	if (!proc)
		return;
	__s32 key = -1;
	__u64 record = 0;
	if (bpf_probe_read_user(&key, sizeof(key), (const void *)(proc->runtime_addr +
			offsetof(struct dynotag_runtime, tss_key))) || key < 0)
		return;
	if (read_thread_specific((__u32)key, &record) || !record)
		return;
	__u32 seq_before = 0, seq_after = 0, count = 0;
	if (bpf_probe_read_user(&seq_before, sizeof(seq_before), (const void *)record) ||
	    bpf_probe_read_user(&count, sizeof(count), (const void *)(record + 4)) ||
	    bpf_probe_read_user(e->tags, sizeof(e->tags),
				(const void *)(record + offsetof(struct dynotag_record, tags))) ||
	    bpf_probe_read_user(&seq_after, sizeof(seq_after), (const void *)record)) {
		e->tag_status = TAG_READ_ERROR;
		count_drop(DROP_TAG_READ_ERROR);
		return;
	}
	if ((seq_before & 1) || seq_before != seq_after) {
		e->tag_status = TAG_READ_RACE;
		count_drop(DROP_TAG_RACE);
		return;
	}
	e->tag_count = count > DYNOTAG_MAX_TAGS ? DYNOTAG_MAX_TAGS : count;
	e->tag_status = TAG_READ_OK;
}

/* Finds the sampled thread's PyThreadState through the interpreter's pthread
 * TSS key (set for every thread with a Python thread state, also while it has
 * released the GIL), and walks its frames into py_scratch. Returns the number
 * of frames and sets *status. */
static __always_inline __u32 walk_python_stack(__u32 pid, __u32 *status)
{
	struct py_proc *proc = bpf_map_lookup_elem(&py_procs, &pid);
	*status = PY_WALK_NONE;
	if (!proc)
		return 0;
	__u32 version = proc->version_index;
	const struct py_offsets *o = bpf_map_lookup_elem(&py_versions, &version);
	if (!o)
		return 0;

	struct { __s32 initialized; __u32 key; } tss = {};
	if (bpf_probe_read_user(&tss, sizeof(tss),
				(const void *)(proc->runtime_addr + o->runtime_tss_key)))
		return 0;
	if (tss.initialized != 1 || tss.key >= 32) /* glibc's second-level keys unsupported */
		return 0;

	__u64 tstate = 0, frame = 0;
	if (read_thread_specific(tss.key, &tstate) || !tstate)
		return 0;
	if (o->tstate_frame >= 0) {
		if (read_user_u64(tstate + o->tstate_frame, &frame))
			return 0;
	} else {
		__u64 cframe = 0;
		if (read_user_u64(tstate + o->tstate_cframe, &cframe) || !cframe ||
		    read_user_u64(cframe + o->cframe_current_frame, &frame))
			return 0;
	}
	struct py_walk w = { .frame = frame, .status = PY_WALK_OK };
	__builtin_memcpy(&w.o, o, sizeof(w.o));
	bpf_loop(PY_WALK_STEPS + PY_WALK_LOOKAHEAD, py_walk_step, &w, 0);
	/* Stopped with frames left (too deep, or the steps went on shim
	 * frames): the outermost frames are missing. */
	if (w.status == PY_WALK_OK && w.frame)
		w.status = PY_WALK_TRUNCATED;
	if (w.status == PY_WALK_READ_ERROR)
		count_drop(DROP_PY_READ_ERROR);
	else if (w.status == PY_WALK_TRUNCATED)
		count_drop(DROP_PY_TRUNCATED);
	*status = w.status;
	return w.n;
}


/* Reads the counters of this CPU into c[] (0 for slots not open). */
static __always_inline void read_counters(__u64 c[COUNTER_SLOTS])
{
	struct bpf_perf_event_value v;
	c[COUNTER_PRIMARY] = 0;
	c[COUNTER_CYCLES] = 0;
	if (counter_open[COUNTER_PRIMARY] &&
	    !bpf_perf_event_read_value(&counter_primary, BPF_F_CURRENT_CPU, &v, sizeof(v)))
		c[COUNTER_PRIMARY] = v.counter;
	if (counter_open[COUNTER_CYCLES] &&
	    !bpf_perf_event_read_value(&counter_cycles, BPF_F_CURRENT_CPU, &v, sizeof(v)))
		c[COUNTER_CYCLES] = v.counter;
}

static __always_inline bool counters_on(void)
{
	return counter_open[COUNTER_PRIMARY] || counter_open[COUNTER_CYCLES];
}

static __always_inline bool is_counted(__u32 pid)
{
	return !filter_pids || bpf_map_lookup_elem(&targets, &pid);
}

/* A thread born during the capture: all of its CPU time belongs to it. */
static __always_inline bool born_during_capture(struct task_struct *task)
{
	return task->start_time >= counting_since_ns;
}

/* task_struct.flags: the task is exiting (set before sched_process_exit). */
#define PF_EXITING 0x00000004

/* Creates the thread's accounting entry (or returns the one a racing caller
 * made). A thread alive when counting began gets its CPU time so far as its
 * baseline; one born since starts from zero. NULL when out of memory. */
static __always_inline struct task_counts *create_entry(struct task_struct *task, __u32 pid)
{
	struct task_counts *tc = bpf_task_storage_get(&task_counts, task, 0,
						      BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!tc || tc->pid)
		return tc;
	tc->pid = pid;
	if (!born_during_capture(task)) {
		tc->base_ns = task->se.sum_exec_runtime;
		tc->sampled_ns = tc->base_ns;
	}
	return tc;
}

/* The thread's accounting entry, created on first use. A thread alive when
 * counting began got its entry (and baseline) from snapshot_task_counts; one
 * born since starts from zero; one the snapshot missed (a target added later)
 * is accounted from now on. An exiting thread gets none here: its exit flush
 * makes it (and hands over all its time), and one made after that flush
 * would start from zero and hand over the thread's whole life again. NULL
 * before counting began, for an exiting thread without one, or when out of
 * memory. */
static __always_inline struct task_counts *task_entry(struct task_struct *task, __u32 pid)
{
	if (!counting_since_ns)
		return NULL;
	struct task_counts *tc = bpf_task_storage_get(&task_counts, task, 0, 0);
	if (tc || (task->flags & PF_EXITING))
		return tc;
	return create_entry(task, pid);
}

/* Hands over the thread's CPU time up to runtime that nobody took yet, and
 * returns it (ns). Samples (on the thread's CPU), window flushes (an
 * iterator on any CPU) and the exit and free hooks all take their share
 * here: sampled_ns only rises, by compare-and-swap, so each ns goes to
 * exactly one taker. A taker that read an older runtime than the last one
 * gets 0 and leaves the rest to the next. Bounded retries: a taker that
 * keeps losing leaves its share to the next taker, never twice. */
static __always_inline __u64 claim_runtime(struct task_counts *tc, __u64 runtime)
{
	__u64 seen = tc->sampled_ns;
	for (int i = 0; i < 4; i++) {
		if (runtime <= seen)
			return 0;
		__u64 prev = __sync_val_compare_and_swap(&tc->sampled_ns, seen, runtime);
		if (prev == seen)
			return runtime - seen;
		seen = prev;
	}
	return 0;
}

/* Fills r with what identifies task's process (the CPU time is the caller's). */
static __always_inline void fill_unsampled(struct unsampled_record *r, struct task_struct *task,
					   __u64 ns)
{
	r->tid = task->pid;
	r->pid = task->tgid;
	r->ppid = BPF_CORE_READ(task, real_parent, tgid);
	r->pad = 0;
	r->unsampled_ns = ns;
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	if (!leader || bpf_probe_read_kernel_str(r->group_comm, sizeof(r->group_comm),
						  leader->comm) < 0)
		bpf_probe_read_kernel_str(r->group_comm, sizeof(r->group_comm), task->comm);
}

/* Adds the counter deltas since this CPU's checkpoint to tc. */
static __always_inline void account_counters(const struct cpu_checkpoint *cp,
					     struct task_counts *tc, const __u64 c[COUNTER_SLOTS])
{
	for (int i = 0; i < COUNTER_SLOTS; i++) {
		__u64 d = c[i] - cp->counters[i];
		/* A sample (NMI) nested in on_switch/on_exit moved the checkpoint
		 * past the values read before it: nothing to add, not ~2^64. */
		if (c[i] < cp->counters[i]) {
			count_drop(DROP_COUNTER_BACKWARDS);
			d = 0;
		}
		tc->counters[i] += d;
		tc->pending[i] += d;
	}
}

/* Restarts this CPU's checkpoint: tid runs from the counter values c[]. */
static __always_inline void move_checkpoint(struct cpu_checkpoint *cp, __u32 tid,
					    const __u64 c[COUNTER_SLOTS])
{
	cp->tid = tid;
	cp->counters[0] = c[0];
	cp->counters[1] = c[1];
}

/* Attached only while counting events are open (hardware instructions and
 * cycles, or the software stand-in): they count per CPU, so each switch
 * charges the outgoing thread what the CPU counted since the last one. CPU
 * time needs no hook: the scheduler keeps it per task (sum_exec_runtime). */
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 zero = 0;
	if (!counting || !counters_on())
		return 0;
	struct cpu_checkpoint *cp = bpf_map_lookup_elem(&checkpoints, &zero);
	if (!cp)
		return 0;
	__u64 c[COUNTER_SLOTS];
	read_counters(c);
	__u32 prev_tid = prev->pid, prev_pid = prev->tgid;
	if (prev_tid && cp->tid == prev_tid && is_counted(prev_pid)) {
		struct task_counts *tc = task_entry(prev, prev_pid);
		if (tc)
			account_counters(cp, tc, c);
	}
	move_checkpoint(cp, next->pid, c);
	return 0;
}

/* Charges the counters of the running thread's current slice (if this CPU's
 * checkpoint is its own) and restarts the checkpoint from now. */
static __always_inline void charge_current_slice(__u32 tid, struct task_counts *tc)
{
	__u32 zero = 0;
	struct cpu_checkpoint *cp = bpf_map_lookup_elem(&checkpoints, &zero);
	if (!cp)
		return;
	__u64 c[COUNTER_SLOTS];
	read_counters(c);
	if (cp->tid == tid)
		account_counters(cp, tc, c);
	/* Otherwise the thread has run since before the first switch we saw on
	 * this CPU (we attached mid-slice): count from now on, or a thread that
	 * is never switched out would never be counted. */
	move_checkpoint(cp, tid, c);
}

/* At a sample: hand the thread's CPU time and counts since its previous
 * sample to this sample. */
static __always_inline void sample_counts(__u32 pid, __u32 tid, struct profile_sample_event *e)
{
	e->delta_ns = 0;
	e->delta[0] = 0;
	e->delta[1] = 0;
	if (!counting || !is_counted(pid))
		return;
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_counts *tc = task_entry(task, pid);
	if (!tc)
		return;
	/* The scheduler brings sum_exec_runtime up to date at every tick and
	 * switch: what ran since the last tick goes to the next sample. */
	e->delta_ns = claim_runtime(tc, task->se.sum_exec_runtime);
	if (!counters_on())
		return;
	charge_current_slice(tid, tc);
	e->delta[0] = tc->pending[0];
	e->delta[1] = tc->pending[1];
	tc->pending[0] = 0;
	tc->pending[1] = 0;
}

#define STACK_BYTES (PROFILE_MAX_FRAMES * 8)

/* Takes a sample of the current thread, weighing period; ctx is the calling
 * program's context (bpf_get_stack walks from it). */
static __always_inline int take_sample(void *ctx, __u64 period)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	__u32 zero = 0;

	if (skip_idle && tid == 0)
		return 0;
	if (!is_target(pid, tid))
		return 0;

	struct profile_sample_event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	fill_header(&e->hdr, PROFILE_EVENT_SAMPLE, pid, tid);
	e->period = period;

	long klen = kernel_stacks ? bpf_get_stack(ctx, e->stack, STACK_BYTES, 0) : 0;
	if (klen < 0) {
		count_drop(DROP_KSTACK_ERROR);
		e->kstack_len = (__s32)klen;
		klen = 0;
	} else {
		e->kstack_len = (__s32)(klen / 8);
	}
	/* Bound the offset so the verifier sees the user stack stays in stack[]. */
	__u64 koff = (__u64)klen & 1023;
	if (koff > STACK_BYTES)
		koff = STACK_BYTES;

	long ulen = 0;
	struct task_struct *task = bpf_get_current_task_btf();
	/* CPython is built without frame pointers: past the first few frames its
	 * native stack is noise the Python walk replaces, so don't pay for it. */
	__u32 ubytes = walk_python && bpf_map_lookup_elem(&py_procs, &pid) ?
		       PY_NATIVE_FRAMES * 8 : STACK_BYTES;
	if (task->mm) { /* kernel threads have no user stack */
		ulen = bpf_get_stack(ctx, (char *)e->stack + koff, ubytes, BPF_F_USER_STACK);
		if (ulen < 0) {
			count_drop(DROP_USTACK_ERROR);
			e->ustack_len = (__s32)ulen;
			ulen = 0;
		} else {
			e->ustack_len = (__s32)(ulen / 8);
		}
	} else {
		e->ustack_len = 0;
	}
	__u64 uoff = (__u64)ulen & 1023;
	if (uoff > STACK_BYTES)
		uoff = STACK_BYTES;

	read_thread_tags(pid, e);
	sample_counts(pid, tid, e);
	{
		/* The process's name and parent: the agent labels by process. */
		struct task_struct *leader = task->group_leader;
		if (!leader || bpf_probe_read_kernel_str(e->group_comm, sizeof(e->group_comm),
							  leader->comm) < 0)
			__builtin_memcpy(e->group_comm, e->hdr.comm, sizeof(e->group_comm));
		e->ppid = BPF_CORE_READ(task, real_parent, tgid);
		e->pad = 0;
	}
	e->py_len = 0;
	e->py_status = PY_WALK_NONE;
	if (walk_python) {
		__u32 status = PY_WALK_NONE;
		__u32 npy = walk_python_stack(pid, &status);
		struct py_frames_buf *buf = bpf_map_lookup_elem(&py_scratch, &zero);
		__u64 off = (koff + uoff) & 2047;
		__u64 bytes = (__u64)npy * sizeof(struct py_frame);
		if (bytes > sizeof(buf->frames))
			bytes = sizeof(buf->frames);
		if (buf && off <= PROFILE_NATIVE_BYTES && bytes &&
		    !bpf_probe_read_kernel((char *)e->stack + off, bytes & 4095, buf->frames)) {
			e->py_len = bytes / sizeof(struct py_frame);
			uoff += bytes;
		}
		e->py_status = status;
	}

	__u64 size = offsetof(struct profile_sample_event, stack) + koff + uoff;
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (bpf_ringbuf_output(&events, e, size, wakeup_flags(first_sight(pid))))
		count_drop(DROP_RINGBUF_FULL);
	return 0;
}

SEC("perf_event")
int sample_stack(struct bpf_perf_event_data *ctx)
{
	return take_sample(ctx, ctx->sample_period);
}

/* Sampling on the scheduler tick (record -e tick): a busy CPU is interrupted
 * HZ times a second anyway; sampling from inside that interrupt adds none.
 * Each CPU adds up the time between its ticks and samples once a period's
 * worth has passed, so samples come at the requested rate on average (at tick
 * granularity). The kernel stack starts in the interrupt path: userspace cuts
 * it at the interrupt entry. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tick_clock);
} tick_clocks SEC(".maps");

SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(sample_on_tick, struct hrtimer *timer, ktime_t *now)
{
	__u32 zero = 0;
	if (!tick_function || (__u64)timer->function != tick_function)
		return 0;
	struct tick_clock *tc = bpf_map_lookup_elem(&tick_clocks, &zero);
	if (!tc)
		return 0;
	/* Every tick stands for one tick period, wherever it falls: a longer step
	 * is a tick that stopped while the CPU idled, and idle time is not
	 * sampled (cpu-clock's idle samples are dropped too). */
	__u64 expiry = timer->node.expires;
	__u64 step = tc->last_expiry ? expiry - tc->last_expiry : 0;
	tc->last_expiry = expiry;
	if (step && (!tc->tick_ns || step < tc->tick_ns))
		tc->tick_ns = step;
	tc->owed_ns += tc->tick_ns;
	if (tc->owed_ns < tick_sample_ns)
		return 0;
	tc->owed_ns -= tick_sample_ns;
	if (tc->owed_ns >= tick_sample_ns)
		tc->owed_ns = 0; /* never a burst of catch-up samples */
	/* Asked for more samples than ticks: each one stands for a whole tick. */
	return take_sample(ctx, tc->tick_ns > tick_sample_ns ? tc->tick_ns : tick_sample_ns);
}

static __always_inline void notify(__u32 type, __u32 pid, __u32 tid, bool wake)
{
	struct profile_task_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_EVENT_RINGBUF_FULL);
		return;
	}
	fill_header(&e->hdr, type, pid, tid);
	bpf_ringbuf_submit(e, wakeup_flags(wake));
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 pid = p->tgid, tid = p->pid;
	if (filter_pids && !bpf_map_lookup_elem(&targets, &pid))
		return 0;
	notify(PROFILE_EVENT_EXEC, pid, tid, true);
	bpf_map_delete_elem(&seen_pids, &pid); /* its next sample is news again */
	return 0;
}

/* Fills out (a record for userspace) with what task used since counting
 * began. False when the task is not accounted: it was alive when counting
 * began and the snapshot did not see it. */
static __always_inline bool task_totals(struct task_struct *task, struct task_counts *tc,
					struct task_counts *out)
{
	__u64 runtime = task->se.sum_exec_runtime;
	if (tc) {
		__builtin_memcpy(out, tc, sizeof(*out));
	} else {
		if (!born_during_capture(task))
			return false;
		__builtin_memset(out, 0, sizeof(*out));
		out->pid = task->tgid;
	}
	out->cpu_ns = runtime > out->base_ns ? runtime - out->base_ns : 0;
	bpf_probe_read_kernel_str(out->comm, sizeof(out->comm), task->comm);
	return true;
}

/* Sends an exiting thread's final counts to userspace, with its CPU time no
 * sample took (since its last sample, or all of it). Its entry stays, marked
 * exited and fully handed over: the thread still runs after this tracepoint
 * (exit_files, exit_notify, its last switch), and a sample then must hand
 * over only that, which on_free sends the rest of. The entry is freed with
 * the task. */
static __always_inline void flush_task_counts(__u32 pid, __u32 tid)
{
	if (!counting_since_ns || !is_counted(pid))
		return;
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_counts *tc = bpf_task_storage_get(&task_counts, task, 0, 0);
	/* Without an entry, a thread born during the capture is accounted from
	 * zero; one alive before that the snapshot missed is not (as before). */
	bool accounted = tc || born_during_capture(task);
	if (tc && counters_on()) {
		charge_current_slice(tid, tc);
		__u32 zero = 0;
		struct cpu_checkpoint *cp = bpf_map_lookup_elem(&checkpoints, &zero);
		if (cp)
			cp->tid = 0; /* its last switch-out must not count it again */
	}
	if (!tc)
		tc = create_entry(task, pid);
	if (!tc) /* out of memory: later samples may hand over its whole life */
		return;
	__u64 ns = claim_runtime(tc, task->se.sum_exec_runtime);
	tc->flags |= TASK_COUNTS_EXITED;
	if (!accounted)
		return;
	struct profile_task_counts_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_EVENT_RINGBUF_FULL);
		return;
	}
	task_totals(task, tc, &e->counts);
	fill_unsampled(&e->unsampled, task, ns);
	fill_header(&e->hdr, PROFILE_EVENT_TASK_COUNTS, pid, tid);
	bpf_ringbuf_submit(e, wakeup_flags(false));
}

/* A dead thread is freed after its last switch (the scheduler's reference
 * is the last but one): its CPU time is final. Sends what it ran since its
 * exit record that no sample took; for a thread group leader always (even
 * 0 ns): from then on its pid may belong to a new process. */
SEC("tp_btf/sched_process_free")
int BPF_PROG(on_free, struct task_struct *p)
{
	if (!counting || !counting_since_ns || !p)
		return 0;
	struct task_counts *tc = bpf_task_storage_get(&task_counts, p, 0, 0);
	if (!tc || !(tc->flags & TASK_COUNTS_EXITED))
		return 0;
	__u64 ns = claim_runtime(tc, p->se.sum_exec_runtime);
	if (!ns && p->pid != p->tgid)
		return 0;
	struct profile_unsampled_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_EVENT_RINGBUF_FULL);
		return 0;
	}
	fill_unsampled(&e->unsampled, p, ns);
	e->hdr.type = PROFILE_EVENT_UNSAMPLED;
	e->hdr.pid = p->tgid;
	e->hdr.tid = p->pid;
	e->hdr.cpu = bpf_get_smp_processor_id();
	e->hdr.time_ns = bpf_ktime_get_ns();
	bpf_probe_read_kernel_str(e->hdr.comm, sizeof(e->hdr.comm), p->comm);
	bpf_ringbuf_submit(e, wakeup_flags(false));
	return 0;
}

/* Run once when counting begins: records every accounted thread's CPU time
 * so far as its baseline (task_counts.base_ns). */
SEC("iter/task")
int snapshot_task_counts(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	if (!task || !counting_since_ns || !is_counted(task->tgid))
		return 0;
	task_entry(task, task->tgid);
	return 0;
}

/* Writes every live accounted thread's totals (struct task_counts_record) to
 * the iterator's file: userspace reads them at the end of a capture. */
SEC("iter/task")
int dump_task_counts(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	if (!task || !counting_since_ns || !is_counted(task->tgid))
		return 0;
	struct task_counts *tc = bpf_task_storage_get(&task_counts, task, 0, 0);
	struct task_counts_record rec = { .tid = task->pid };
	if (task_totals(task, tc, &rec.counts))
		bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}

/* Hands every live accounted thread's CPU time not yet taken by a sample to
 * the reader (struct unsampled_record each): the agent runs it when it closes
 * a window, so the window gets the CPU time used in it, not at some later
 * sample. */
SEC("iter/task")
int flush_unsampled(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	if (!task || !counting_since_ns || !is_counted(task->tgid))
		return 0;
	struct task_counts *tc = task_entry(task, task->tgid);
	if (!tc)
		return 0;
	__u64 ns = claim_runtime(tc, task->se.sum_exec_runtime);
	if (!ns)
		return 0;
	struct unsampled_record rec = {};
	fill_unsampled(&rec, task, ns);
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	__u32 pid = p->tgid, tid = p->pid;
	if (counting)
		flush_task_counts(pid, tid);
	if (pid != tid) /* only the thread group leader ends the process */
		return 0;
	if (!filter_pids || bpf_map_lookup_elem(&targets, &pid))
		notify(PROFILE_EVENT_EXIT, pid, tid, false);
	bpf_map_delete_elem(&seen_pids, &pid);
	if (filter_pids)
		bpf_map_delete_elem(&targets, &pid);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ppid = parent->tgid, cpid = child->tgid;
	__u8 one = 1;
	if (!follow_children || !filter_pids || ppid == cpid)
		return 0;
	/* A full targets map would lose the child's samples: counted. */
	if (bpf_map_lookup_elem(&targets, &ppid) &&
	    bpf_map_update_elem(&targets, &cpid, &one, BPF_ANY))
		count_drop(DROP_FORK_UNTRACKED);
	return 0;
}
