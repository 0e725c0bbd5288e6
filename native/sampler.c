/* The native stack sampler: a pthread (no Python code in its loop) that wakes on a clock, stops
 * every thread that runs Python for one tick (holding the GIL's mutex once the GIL's holder has
 * stopped where it would give the GIL up, gil.h; or, when that cannot be done, taking the GIL),
 * reads every thread's interpreter frames and CPU clock into bounded C tables, and lets them go.
 * In a tick nothing is allocated, freed or called, so no garbage collection and no GIL hand-off
 * can happen mid-walk. Code
 * objects and tasks that the tables point at are kept alive by a reference taken there;
 * Python drops them when it drains the tables (drain, frames, compact), where names, files and
 * lines are resolved once per (code, offset).
 *
 * CPU time: each thread's CPU-clock delta since its previous read. A thread whose innermost frame
 * and offset did not move is read less often (its total stays exact: the delta lands on the
 * stack it sat in). CPU burnt before a thread blocked is charged to where it burnt: for a thread
 * that burnt CPU since its last read, the kernel tells (/proc/self/task/<tid>/syscall, one pread
 * of a kept descriptor) whether it is blocked in a system call right now. One that is running,
 * preempted, or waiting on the GIL itself was found where it works; one blocked anywhere else is
 * in a wait, so its delta goes to the stack it was last seen running at, not to the wait.
 */
#define PY_SSIZE_T_CLEAN
#define Py_BUILD_CORE_MODULE 1
#include <Python.h>
#if PY_VERSION_HEX >= 0x030B0000
#include "internal/pycore_frame.h"
#else
#include <frameobject.h>
#endif
#include "internal/pycore_runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "gil.h"
#include "stacks.h"

#define NAME_CAP 64
#define MAX_THREADS 4096
#define MAX_COUNTERS 16384
#define MAX_DEPTH_CAP 512
#define RING_CAP (1u << 16)
/* A parked thread's clock is read at least every 64 ticks (a system call each, the most of a
 * crowd's tick at 16); one whose innermost frame moves is read at every tick. */
#define CLOCK_EVERY_MAX 64
#define NAMES_EVERY 128     /* thread names are re-read every 128 ticks */
/* The budget is a token bucket (account()): ticks aim a twentieth under it, and what cheap ticks
 * save is kept for dear ones up to the allowance of BURST_NS of wall time (at a 1 % budget, 1.9 ms
 * of CPU), so that over a 2 s window the share passes the aim by at most a tenth of the budget. */
#define BUDGET_AIM 0.95
#define BURST_NS 200000000LL
/* The effective rate is the ticks over the wall time they spanned, both counted with weights that
 * fade over about a second of wall time or about RATE_TICKS ticks, whichever spans more. Uneven
 * spacing does not skew it (a time-weighted mean spacing read 8 Hz against 15 Hz measured when a
 * dear tick's wait stood among short ones); at a budget-bound few hertz a second alone held two
 * or three ticks and one dear tick's wait halved the rate read (1.2 Hz against 2.3 Hz over 4 s).
 * The price: a drop from 100 Hz to 1 Hz reads under 4 Hz after 12 s. */
#define RATE_WINDOW_NS 1e9
#define RATE_TICKS 8
#define RATE_SEED 1e-3 /* the nominal rate's weight: the first tick measured outweighs it */
#define MAX_LOOPS 64 /* asyncio event loops followed */
#define IDLE_SHARE 20 /* idle: under a twentieth of the interval on CPU */
#define STOP_WAIT_NS 200000 /* how long a tick waits for the GIL's holder to stop (gil.h) */
#define STATE_FDS 64 /* kept /proc descriptors, at most: the application owns the fd limit */
#define INTERNAL_PREFIX "duragraph-pprof"
#define PREFETCH_AHEAD 12 /* threads ahead of the one read, in a tick's passes */
#define STOP_PREFETCH_AHEAD 16 /* in the stop's pass, which reads one pointer a thread */

typedef struct {
    uint64_t serial;
    uint32_t stack;
    PyObject *task; /* strong, may be NULL */
    unsigned long ident;
    char name[NAME_CAP];
    int64_t cpu_n, cpu_ns, wall_n, wall_ns;
} dg_counter;

typedef struct {
    int64_t time_ns;
    unsigned long ident;
    char name[NAME_CAP];
    uint32_t stack;
    PyObject *task; /* strong, may be NULL */
    int64_t cpu_ns, wall_ns;
} dg_tick_record;

typedef struct {
    /* first, in one cache line (the table is aligned to lines), all that a tick reads and
     * writes of a thread that did not move: a crowd of parked threads then costs a line each */
    _Alignas(64) unsigned long ident; /* 0: a free record */
    uint64_t seen;
    uint64_t clock_due;
    /* wall time at one key (stack, task) since it came there, added to its counter (wall_at)
     * only when the key changes, the thread ends or the counters are drained: a parked thread's
     * tick then touches no counter */
    PyObject *wall_task; /* held by its counter */
    int64_t wall_n, wall_ns;
    uint32_t stack; /* the stack the last walk gave */
    uint32_t wall_stack;
    uint8_t internal, fresh; /* fresh: added in a tick that could not name it, sampled once named */
    uint8_t walked, has_clock, pending, wall_valid;
    /* the rest */
    uint64_t serial;
    int resolved;
    clockid_t clock;
    long tid;     /* the kernel's thread id, 0 until known */
    int state_fd; /* /proc/self/task/<tid>/syscall, kept open; -1 if not */
    char name[NAME_CAP];
    dg_mark mark; /* the innermost frame at the last walk */
    uint32_t wall_at;
    /* the CPU clock */
    int64_t cpu_last;
    int cpu_valid;
    uint32_t clock_every;
    /* a delta read at the last tick (`pending`), charged at the next one: `running` says whether
     * the thread was blocked in a wait when it was read */
    int64_t pend_cpu;
    uint32_t pend_stack;
    PyObject *pend_task;
    int running;
    /* where it was last seen running, since the last drain (its counter holds the task) */
    int run_valid;
    uint32_t run_stack;
    PyObject *run_task;
    /* a delta found running at a stack it had just moved to, held for one more read: a thread
     * that ends a burst as the sampler asks for the GIL gives it up at the next call's first
     * instruction, the wait it is about to block in. If the next read finds it idle there, the
     * delta goes back to where it ran before. */
    int held;
    int64_t held_cpu;
    uint32_t held_stack, held_prev_stack;
    PyObject *held_task, *held_prev_task;
} dg_thread;
_Static_assert(offsetof(dg_thread, serial) <= 64, "a still thread's fields fit one cache line");

typedef struct {
    PyObject_HEAD
    /* configuration */
    int hz, max_depth;
    double budget;
    PyObject *active;  /* threading._active: ident -> Thread */
    PyObject *current; /* asyncio's _current_tasks: loop -> task, or NULL */
    PyObject *name_key, *native_id_key, *thread_id_key;
    /* the thread */
    pthread_t thread;
    int wake_fd, wake_open; /* an eventfd that stop() writes to end the thread's sleep */
    int running, stopping;
    int by_word; /* the last stop was confirmed by the GIL mutex's word */
    int waiter;  /* a thread had asked for the GIL before the last stop (gil.h) */
    int switches_valid; /* the last tick read every thread at GIL switch count `switches` */
    unsigned long switches;
    int64_t last_stop_ns;
    PyThreadState *own;
    PyInterpreterState *interp;
    int64_t interval_ns;
    double credit_ns;   /* CPU the budget still allows (negative: owed), as of credit_at */
    int64_t credit_at;
    double rate_ticks, rate_ns; /* ticks and the wall time they spanned, fading (RATE_WINDOW_NS) */
    /* tables */
    dg_thread *threads;
    dg_index thread_ix;
    int nthreads;
    uint64_t next_serial, tick_no, names_due;
    int unresolved;
    dg_counter *counters;
    dg_index counter_ix;
    uint32_t ncounters;
    dg_stacks st;
    dg_tick_record *ring;
    uint32_t nring;
    dg_frame walk_buf[MAX_DEPTH_CAP];
    struct {
        int thread;
        PyThreadState *ts;
    } pairs[MAX_THREADS];
    int npairs; /* as the last tick left them */
    int moved_to[MAX_THREADS]; /* where the records the pairs name went as ended ones left */
    /* counts */
    int state_fds; /* how many records keep a descriptor open */
    /* stopping the world for a tick (gil.h) */
    int can_stop, want_gil;
    struct {
        const void *loop; /* compared, never followed */
        unsigned long ident;
    } loops[MAX_LOOPS];
    int nloops;
    uint64_t ticks, samples, dropped, lost, head_busy, threads_over, ring_lost, cpu_ns,
        state_unread, stopped, stopped_by_word, stop_missed, quiet_ticks,
        walk_ns, stop_ns, resume_ns; /* wall time reading, stopping the world, letting it go */
} Sampler;

static int running_samplers = 0; /* live sampler threads in this process (GIL-guarded) */

/* -- clocks ----------------------------------------------------------------------------------*/
static int64_t clock_ns(clockid_t clock)
{
    struct timespec t;
    if (clock_gettime(clock, &t) != 0)
        return -1;
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static clockid_t thread_clock(long native_id)
{ /* the kernel's encoding of a thread's CPU clock, as pthread_getcpuclockid gives it */
    return (clockid_t)(((~(unsigned long)native_id) << 3) | 6);
}

static int dg_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/* -- the runtime's thread-list lock, tried and never waited for ------------------------------ */
static int head_trylock(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyMutex_LockFast(&_PyRuntime.interpreters.mutex._bits);
#else
    return PyThread_acquire_lock(_PyRuntime.interpreters.mutex, NOWAIT_LOCK) == PY_LOCK_ACQUIRED;
#endif
}

static void head_unlock(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyMutex_Unlock(&_PyRuntime.interpreters.mutex);
#else
    PyThread_release_lock(_PyRuntime.interpreters.mutex);
#endif
}

/* -- reading plain attributes without running code ------------------------------------------- */
/* A new reference to obj.name when it is a plain instance attribute; NULL otherwise, with no
 * error set. Refuses anything that could run Python code: a custom getattr, a class attribute or
 * descriptor of that name. */
static PyObject *plain_attr(PyObject *obj, PyObject *name)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (tp->tp_getattro != PyObject_GenericGetAttr || _PyType_Lookup(tp, name) != NULL)
        return NULL;
    PyObject *value = NULL;
#if PY_VERSION_HEX >= 0x030D0000
    if (PyObject_GetOptionalAttr(obj, name, &value) < 0)
#else
    if (_PyObject_LookupAttr(obj, name, &value) < 0)
#endif
    {
        PyErr_Clear(); /* not reached for a plain attribute: a missing one sets no error */
        return NULL;
    }
    return value;
}

/* UTF-8 of a str into buf (NUL-terminated, cut at a character boundary), with no allocation. */
static void copy_name(PyObject *s, char *buf)
{
    buf[0] = 0;
    if (!PyUnicode_Check(s) || !PyUnicode_IS_READY(s))
        return;
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    size_t o = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        char tmp[4];
        size_t k;
        if (c < 0x80) {
            tmp[0] = (char)c;
            k = 1;
        } else if (c < 0x800) {
            tmp[0] = (char)(0xC0 | (c >> 6));
            tmp[1] = (char)(0x80 | (c & 0x3F));
            k = 2;
        } else if (c < 0x10000) {
            tmp[0] = (char)(0xE0 | (c >> 12));
            tmp[1] = (char)(0x80 | ((c >> 6) & 0x3F));
            tmp[2] = (char)(0x80 | (c & 0x3F));
            k = 3;
        } else {
            tmp[0] = (char)(0xF0 | (c >> 18));
            tmp[1] = (char)(0x80 | ((c >> 12) & 0x3F));
            tmp[2] = (char)(0x80 | ((c >> 6) & 0x3F));
            tmp[3] = (char)(0x80 | (c & 0x3F));
            k = 4;
        }
        if (o + k >= NAME_CAP)
            break;
        memcpy(buf + o, tmp, k);
        o += k;
    }
    buf[o] = 0;
}

/* -- thread records --------------------------------------------------------------------------- */
static void thread_known(dg_thread *r, long tid)
{
    r->tid = tid;
    r->clock = thread_clock(tid);
    r->has_clock = 1;
}

static void thread_forget_fd(Sampler *s, dg_thread *r)
{
    if (r->state_fd >= 0) {
        close(r->state_fd);
        r->state_fd = -1;
        s->state_fds--;
    }
}

static void threads_forget_fds(Sampler *s)
{
    for (int i = 0; i < s->nthreads; i++)
        thread_forget_fd(s, &s->threads[i]);
}

static dg_thread *thread_find(Sampler *s, unsigned long ident)
{
    uint32_t slot;
    DG_PROBE(&s->thread_ix, dg_mix(ident), s->threads[e].ident == ident, slot);
    int32_t e = s->thread_ix.slots[slot];
    return e < 0 ? NULL : &s->threads[e];
}

static dg_thread *thread_add(Sampler *s, unsigned long ident, PyThreadState *ts)
{
    if (s->nthreads >= MAX_THREADS)
        return NULL;
    uint32_t slot;
    DG_PROBE(&s->thread_ix, dg_mix(ident), s->threads[e].ident == ident, slot);
    dg_thread *r = &s->threads[s->nthreads];
    memset(r, 0, sizeof(*r));
    r->ident = ident;
    r->serial = ++s->next_serial;
    r->clock_every = 1;
    r->state_fd = -1;
#if PY_VERSION_HEX >= 0x030B0000
    if (ts->native_thread_id)
        thread_known(r, (long)ts->native_thread_id);
#else
    (void)ts; /* 3.10 keeps no native id: it comes from the Thread object */
#endif
    s->thread_ix.slots[slot] = s->nthreads++;
    s->unresolved++;
    return r;
}

static void thread_reindex(Sampler *s)
{
    dg_index_clear(&s->thread_ix);
    for (int i = 0; i < s->nthreads; i++) {
        uint32_t slot;
        DG_PROBE(&s->thread_ix, dg_mix(s->threads[i].ident), 0, slot);
        s->thread_ix.slots[slot] = i;
    }
}

/* Names (and on 3.10 native ids) from threading's table: one pass, for every record. */
static void thread_names(Sampler *s, int all)
{
    Py_ssize_t pos = 0;
    PyObject *key, *thread;
    if (s->active == NULL || !PyDict_Check(s->active))
        return;
    while (PyDict_Next(s->active, &pos, &key, &thread)) {
        if (!PyLong_CheckExact(key))
            continue;
        dg_thread *r = thread_find(s, PyLong_AsUnsignedLongMask(key));
        if (r == NULL || (r->resolved && !all))
            continue;
        PyObject *name = plain_attr(thread, s->name_key);
        if (name != NULL) {
            copy_name(name, r->name);
            Py_DECREF(name); /* the Thread still holds it: no object is freed */
            r->internal = strncmp(r->name, INTERNAL_PREFIX, sizeof(INTERNAL_PREFIX) - 1) == 0;
        }
#if PY_VERSION_HEX < 0x030B0000
        if (!r->has_clock) {
            PyObject *nid = plain_attr(thread, s->native_id_key);
            if (nid != NULL) {
                if (PyLong_CheckExact(nid)) {
                    long v = (long)PyLong_AsUnsignedLongMask(nid);
                    if (v > 0)
                        thread_known(r, v);
                }
                Py_DECREF(nid);
            }
        }
#endif
        if (!r->resolved) {
            r->resolved = 1;
            s->unresolved--;
        }
    }
}

/* -- counters --------------------------------------------------------------------------------- */
static dg_counter *counter(Sampler *s, dg_thread *r, uint32_t stack, PyObject *task)
{
    uint64_t h = dg_mix(r->serial ^ dg_mix(((uint64_t)stack << 32) ^ (uintptr_t)task));
    uint32_t slot;
#define SAME_KEY                                                                                  \
    (s->counters[e].serial == r->serial && s->counters[e].stack == stack &&                       \
     s->counters[e].task == task)
    DG_PROBE(&s->counter_ix, h, SAME_KEY, slot);
#undef SAME_KEY
    int32_t e = s->counter_ix.slots[slot];
    if (e >= 0)
        return &s->counters[e];
    if (s->ncounters >= MAX_COUNTERS) {
        s->lost++;
        return NULL;
    }
    dg_counter *c = &s->counters[s->ncounters];
    memset(c, 0, sizeof(*c));
    c->serial = r->serial;
    c->stack = stack;
    c->task = task;
    Py_XINCREF(task); /* the counter holds the task until Python drains it */
    c->ident = r->ident;
    memcpy(c->name, r->name, NAME_CAP);
    s->counter_ix.slots[slot] = (int32_t)s->ncounters++;
    return c;
}

static void charge(Sampler *s, dg_thread *r, uint32_t stack, PyObject *task, int64_t cpu)
{
    dg_counter *c = counter(s, r, stack, task);
    if (c != NULL) {
        c->cpu_n++;
        c->cpu_ns += cpu;
    }
}

/* The held delta, at the next clock read: `idle` if the thread sat still at the held stack. */
static void release_held(Sampler *s, dg_thread *r, int idle)
{
    if (!r->held)
        return;
    r->held = 0;
    if (idle)
        charge(s, r, r->held_prev_stack, r->held_prev_task, r->held_cpu);
    else
        charge(s, r, r->held_stack, r->held_task, r->held_cpu);
}

/* Charge the delta read at the last tick, now that the read after it says where it burnt. */
static void settle(Sampler *s, dg_thread *r, int known)
{
    if (!r->pending)
        return;
    r->pending = 0;
    if (known && !r->running && r->run_valid) { /* blocked: it burnt that where it last ran */
        charge(s, r, r->run_stack, r->run_task, r->pend_cpu);
        return;
    }
    int moved = r->run_valid && (r->run_stack != r->pend_stack || r->run_task != r->pend_task);
    if (known && moved) {
        r->held = 1;
        r->held_cpu = r->pend_cpu;
        r->held_stack = r->pend_stack;
        r->held_task = r->pend_task;
        r->held_prev_stack = r->run_stack;
        r->held_prev_task = r->run_task;
    } else {
        charge(s, r, r->pend_stack, r->pend_task, r->pend_cpu);
    }
    r->run_valid = 1;
    r->run_stack = r->pend_stack;
    r->run_task = r->pend_task;
}

/* The wall time held in the record, into its counter. */
static void wall_flush(Sampler *s, dg_thread *r)
{
    if (r->wall_valid && r->wall_n > 0) {
        s->counters[r->wall_at].wall_n += r->wall_n;
        s->counters[r->wall_at].wall_ns += r->wall_ns;
    }
    r->wall_n = r->wall_ns = 0;
}

/* Before the counters go to Python: settle what waits, and use no key of theirs again. */
static void settle_all(Sampler *s)
{
    for (int i = 0; i < s->nthreads; i++) {
        settle(s, &s->threads[i], 0);
        release_held(s, &s->threads[i], 0);
        wall_flush(s, &s->threads[i]);
        s->threads[i].run_valid = 0;
        s->threads[i].wall_valid = 0;
    }
}

/* -- is a thread blocked in a wait? ------------------------------------------------------------ */
/* The system call the thread is in, from the kernel: 1 with its number and first argument
 * (for a futex, the word waited on), 0 if it is running or preempted outside one, -1 if the
 * kernel does not say. */
static int thread_syscall(Sampler *s, dg_thread *r, long *nr, uintptr_t *arg)
{
    if (r->tid <= 0)
        return -1;
    int fd = r->state_fd, kept = 1;
    if (fd < 0) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/task/%ld/syscall", r->tid);
        if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            return -1;
        kept = s->state_fds < STATE_FDS;
        if (kept) {
            r->state_fd = fd;
            s->state_fds++;
        }
    }
    char buf[160]; /* "nr arg1 .. arg6 sp pc": nine numbers */
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (!kept)
        close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    if (buf[0] < '0' || buf[0] > '9') /* "running", or "-1 sp pc": not in a system call */
        return 0;
    char *end;
    *nr = strtol(buf, &end, 10);
    *arg = (uintptr_t)strtoull(end, NULL, 16);
    return 1;
}

/* 1 if the thread is blocked in a system call other than a wait for the GIL, 0 if it is running,
 * preempted or waiting for the GIL, -1 if the kernel does not say. */
static int blocked_now(Sampler *s, dg_thread *r, dg_span gil)
{
    long nr;
    uintptr_t word;
    int in = thread_syscall(s, r, &nr, &word);
    if (in <= 0)
        return in;
    return nr != SYS_futex || word < gil.lo || word >= gil.hi;
}

/* -- asyncio: the task running on each thread's loop ----------------------------------------- */
typedef struct {
    unsigned long ident;
    PyObject *task;
} dg_running;

/* The loop's thread, from its attribute with the GIL (remembered), or from what was remembered
 * when the world is stopped and no attribute may be read: 0 if unknown. */
static unsigned long loop_thread(Sampler *s, PyObject *loop, int stopped)
{
    for (int i = 0; i < s->nloops; i++)
        if (s->loops[i].loop == (const void *)loop)
            return s->loops[i].ident;
    if (stopped) {
        s->want_gil = 1;
        return 0;
    }
    PyObject *tid = plain_attr(loop, s->thread_id_key);
    if (tid == NULL)
        return 0;
    unsigned long ident = PyLong_CheckExact(tid) ? PyLong_AsUnsignedLongMask(tid) : 0;
    Py_DECREF(tid); /* the loop still holds it */
    if (ident != 0 && s->nloops < MAX_LOOPS) {
        s->loops[s->nloops].loop = loop;
        s->loops[s->nloops++].ident = ident;
    }
    return ident;
}

static int running_tasks(Sampler *s, dg_running *out, int stopped)
{
    int n = 0;
    Py_ssize_t pos = 0;
    PyObject *loop, *task;
    if (s->current == NULL || !PyDict_Check(s->current))
        return 0;
    while (n < MAX_LOOPS && PyDict_Next(s->current, &pos, &loop, &task)) {
        if (task == Py_None)
            continue;
        unsigned long ident = loop_thread(s, loop, stopped);
        if (ident != 0) {
            out[n].ident = ident;
            out[n].task = task;
            n++;
        }
    }
    return n;
}

/* A crowd's passes over the thread list are bound by cache misses, each waiting for the last:
 * ask ahead for the thread state that stood `ahead` places further last tick (an address only:
 * it is not read until the list itself leads there). */
static inline void prefetch_listed(Sampler *s, int at, int ahead)
{
    if (at + ahead < s->npairs)
        __builtin_prefetch(s->pairs[at + ahead].ts);
}

/* -- one tick --------------------------------------------------------------------------------- */
/* `still`: the thread has not held the GIL since the last tick (gil.h), so its innermost frame
 * is not read: a crowd of parked threads then costs no cache miss on their stacks. Its clock is
 * still read when due, and CPU found then makes it walked, as for any thread. */
static void sample_thread(Sampler *s, dg_thread *r, PyThreadState *ts, PyObject *task,
                          int64_t wall_ns, int64_t time_ns, int held_gil, dg_span gil, int still)
{
    still = still && r->walked; /* then neither its frame nor the record's mark is read */
    dg_mark mark = {NULL, NULL, NULL};
    int moved = 0;
    if (!still) {
        mark = dg_mark_of(ts);
        moved = !r->walked || !dg_same_mark(mark, r->mark);
    }
    if (moved && dg_top(ts) == NULL) { /* only frames Python cannot see yet: a thread starting */
        r->walked = 0;
        return; /* its clock is read once it can be seen, so no CPU is lost */
    }
    int64_t cpu = -1;
    if (r->has_clock && (moved || s->tick_no >= r->clock_due)) {
        int64_t now = clock_ns(r->clock);
        if (now < 0) {
            r->has_clock = 0; /* exited since the list was read */
        } else {
            cpu = r->cpu_valid && now > r->cpu_last ? now - r->cpu_last : 0;
            r->cpu_last = now;
            r->cpu_valid = 1;
            if (cpu > 0) /* it ran, here or before an earlier tick that found the same frame */
                moved = 1; /* the same innermost frame may hide a changed stack */
            r->clock_every = cpu == 0 && !moved ? (r->clock_every * 2 > CLOCK_EVERY_MAX
                                                       ? CLOCK_EVERY_MAX
                                                       : r->clock_every * 2)
                                                : 1;
            r->clock_due = s->tick_no + r->clock_every;
        }
    }
    if (moved) {
        int n = dg_walk(ts, s->walk_buf, s->max_depth);
        r->stack = dg_stack_intern(&s->st, s->walk_buf, n);
        if (!still)
            r->mark = mark;
        r->walked = 1;
    }
    if (!r->wall_valid || r->wall_stack != r->stack || r->wall_task != task) {
        wall_flush(s, r);
        dg_counter *c = counter(s, r, r->stack, task);
        r->wall_valid = c != NULL;
        if (c != NULL) {
            r->wall_at = (uint32_t)(c - s->counters);
            r->wall_stack = r->stack;
            r->wall_task = task;
        }
    }
    if (r->wall_valid) { /* a parked thread's, nearly always: its counter is not touched */
        r->wall_n++;
        r->wall_ns += wall_ns;
    }
    if (cpu >= 0) /* idle since at the same key: the held delta was burnt before it came here */
        release_held(s, r, r->stack == r->held_stack && task == r->held_task &&
                               cpu * IDLE_SHARE < wall_ns);
    if (cpu > 0) {
        r->pending = 1;
        r->pend_cpu = cpu;
        r->pend_stack = r->stack;
        r->pend_task = task; /* alive: the wall counter above holds it until the drain */
        int blocked = held_gil ? 0 : blocked_now(s, r, gil);
        if (blocked < 0)
            s->state_unread++;
        r->running = blocked != 1;
    }
    if (s->ring != NULL) {
        if (s->nring < RING_CAP) {
            dg_tick_record *t = &s->ring[s->nring++];
            t->time_ns = time_ns;
            t->ident = r->ident;
            memcpy(t->name, r->name, NAME_CAP);
            t->stack = r->stack;
            t->task = task;
            Py_XINCREF(task);
            t->cpu_ns = cpu > 0 ? cpu : 0;
            t->wall_ns = wall_ns;
        } else {
            s->ring_lost++;
        }
    }
    s->samples++;
}

/* One tick, with the GIL or with the world stopped (then the thread list's lock is held, and
 * nothing is done that needs a thread state: names and new loops wait for a tick with the GIL). */
static void tick(Sampler *s, int64_t wall_ns, PyThreadState *holder, int stopped)
{
    dg_running running[MAX_LOOPS];
    int asked = s->want_gil; /* a stopped tick found what only a tick with the GIL can read */
    if (!stopped) {
        s->want_gil = 0;
        if (s->tick_no + 1 >= s->names_due || s->nloops == MAX_LOOPS)
            s->nloops = 0; /* looked up afresh now and then: a loop freed since may share an address */
    }
    int nrunning = running_tasks(s, running, stopped);
    int64_t time_ns = clock_ns(CLOCK_REALTIME);
    if (!stopped && !head_trylock()) { /* a thread is being made or deleted: try next tick */
        s->head_busy++;
        s->dropped++;
        return;
    }
    uint64_t now = ++s->tick_no;
    struct _gil_runtime_state *g = dg_gil(s->interp);
    dg_span gil = dg_gil_span(g);
    /* stopped, the count is stable (the tick holds the GIL's mutex); with the GIL, it counts the
     * tick's own take, and the next holder's take moves it again */
    unsigned long switches = dg_gil_switches(g);
    int quiet = stopped && s->switches_valid && switches == s->switches;
    s->quiet_ticks += (uint64_t)quiet;
    /* first every thread's record, so that a new thread is named before its first sample */
    int npairs = 0, added = 0, intruder = 0, nseen = 0;
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(s->interp); ts != NULL;
         ts = PyThreadState_Next(ts)) {
        intruder |= stopped && ts != s->own && dg_thread_attached(ts);
        prefetch_listed(s, npairs, PREFETCH_AHEAD);
        if (ts == s->own)
            continue;
        /* the list seldom changes: the record at this place last tick, if it is this thread's */
        dg_thread *r = NULL;
        int at = npairs < s->npairs && s->pairs[npairs].ts == ts && s->pairs[npairs].thread < s->nthreads
                     ? s->pairs[npairs].thread
                     : -1;
        if (at >= 0 && quiet && ts != holder) {
            /* only the holder took the GIL since, so this is the thread listed here then, with
             * the frame it had: a state made since at a freed one's address has not run Python
             * yet (its first take moves the count), and is read afresh at the next tick that is
             * not quiet. Its thread id is not read, a cache miss less for each parked thread. */
            r = &s->threads[at];
        } else {
            if (ts->thread_id == 0)
                continue;
            if (at >= 0 && s->threads[at].ident == ts->thread_id)
                r = &s->threads[at];
            if (dg_current(ts) == NULL)
                continue;
        }
        if (r == NULL)
            r = thread_find(s, ts->thread_id);
        if (r == NULL) {
            if ((r = thread_add(s, ts->thread_id, ts)) == NULL) {
                s->threads_over++;
                continue;
            }
            added = 1;
            r->fresh = stopped;
        }
        nseen += r->seen != now;
        r->seen = now;
        s->pairs[npairs].thread = (int)(r - s->threads);
        s->pairs[npairs++].ts = ts;
    }
    s->npairs = npairs;
    if (!stopped && now >= s->names_due) {
        thread_names(s, 1);
        s->names_due = now + NAMES_EVERY;
    } else if (!stopped && s->unresolved > 0 && (added || asked || (now & 7) == 0)) {
        thread_names(s, 0); /* a thread not yet (or never) in threading's table: retry now and then */
    }
    s->switches = switches;
    s->switches_valid = !intruder;
    if (intruder) { /* the world was not stopped after all (gil.h): read nothing */
        s->stopped--;
        s->stopped_by_word -= (uint64_t)s->by_word;
        s->stop_missed++;
    }
    for (int i = 0; i < (intruder ? 0 : npairs); i++) {
        if (i + PREFETCH_AHEAD < npairs) { /* listed this tick: its frame pointer may be read */
            if (!quiet || s->pairs[i + PREFETCH_AHEAD].ts == holder)
                dg_prefetch_mark(s->pairs[i + PREFETCH_AHEAD].ts);
            __builtin_prefetch(&s->threads[s->pairs[i + PREFETCH_AHEAD].thread]);
        }
        dg_thread *r = &s->threads[s->pairs[i].thread];
        if (!stopped)
            r->fresh = 0;
        if (r->internal || r->fresh) /* a new thread is named before its first sample */
            continue;
        settle(s, r, 1);
        PyObject *task = NULL;
        for (int j = 0; j < nrunning; j++)
            if (running[j].ident == r->ident)
                task = running[j].task;
        PyThreadState *ts = s->pairs[i].ts;
        sample_thread(s, r, ts, task, wall_ns, time_ns, ts == holder, gil, quiet && ts != holder);
    }
    if (!stopped)
        head_unlock();
    if (nseen != s->nthreads) { /* threads that ended: their last delta goes where it was seen */
        int kept = 0;
        for (int i = 0; i < s->nthreads; i++) {
            dg_thread *r = &s->threads[i];
            if (r->seen == now) {
                if (kept != i)
                    s->threads[kept] = *r;
                s->moved_to[i] = kept++;
            } else {
                settle(s, r, 0);
                release_held(s, r, 0);
                wall_flush(s, r);
                thread_forget_fd(s, r);
                if (!r->resolved)
                    s->unresolved--;
            }
        }
        s->nthreads = kept;
        thread_reindex(s);
        for (int i = 0; i < npairs; i++) /* every record a pair names was seen, so kept */
            s->pairs[i].thread = s->moved_to[s->pairs[i].thread];
    }
    s->ticks++;
    uint64_t next = now + 1;
    if (added && stopped)
        s->want_gil = 1;
    if (next >= s->names_due || (s->unresolved > 0 && (next & 7) == 0))
        s->want_gil = 1;
}

/* Held by the sampler from trying to stop the world until the world runs again, and by a
 * forking thread across fork(): a child must not inherit the thread list's lock or the GIL's
 * mutex held by a thread it does not have (CPython's own after-fork code takes the list's lock
 * before it re-creates it). The sampler never waits for Python while holding it, and gives up
 * on a holder after STOP_WAIT_NS, so a fork waits at most one tick. */
static pthread_mutex_t world_stop = PTHREAD_MUTEX_INITIALIZER;

static void world_stop_lock(void) { pthread_mutex_lock(&world_stop); }
static void world_stop_unlock(void) { pthread_mutex_unlock(&world_stop); }

/* Stop every thread that runs Python for a tick (gil.h): 1 with the GIL's mutex and the thread
 * list's lock held and the holder stopped; 0 with neither held, the holder (if any) asked to let
 * go, so that the tick takes the GIL. */
static int stop_world(Sampler *s, PyThreadState **holder)
{
    struct _gil_runtime_state *gil = dg_gil(s->interp);
    *holder = NULL;
    pthread_mutex_lock(&gil->mutex);
    int by_word = dg_gil_mutex_waited(gil) == 0; /* else the kernel is asked (gil.h) */
    if (!dg_gil_locked(gil)) { /* free: taking it costs no wait */
        pthread_mutex_unlock(&gil->mutex);
        return 0;
    }
    PyThreadState *h = dg_gil_last_holder(gil);
    *holder = h;
    s->waiter = dg_gil_drop_requested(s->interp, h);
    dg_gil_ask_locked(s->interp, h);
    /* each stop makes the holder give the GIL up and signal its waiters, which restarts their
     * switch interval: a waiter asks in its turn only if stops are a good interval apart */
    int64_t now = clock_ns(CLOCK_MONOTONIC);
    int spaced = now - s->last_stop_ns >= 1500LL * (int64_t)dg_gil_interval_us(gil);
    if (!s->can_stop || s->want_gil || !spaced || !head_trylock()) {
        pthread_mutex_unlock(&gil->mutex);
        return 0;
    }
    int listed = 0; /* last_holder may be stale after PyThreadState_Swap: follow only a live one */
    int at = 0;
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(s->interp); ts != NULL && !listed;
         ts = PyThreadState_Next(ts), at++) {
        prefetch_listed(s, at, STOP_PREFETCH_AHEAD);
        listed = ts == h;
    }
    dg_thread *r = listed ? thread_find(s, h->thread_id) : NULL;
    int64_t since = clock_ns(CLOCK_MONOTONIC);
    int stopped = 0;
    while (r != NULL) {
        /* detached, then blocked on the mutex: by then it has written all it writes before
         * giving the GIL up */
        if (dg_gil_holder_stopped(h)) {
            if (by_word) {
                if ((stopped = dg_gil_mutex_waited(gil) == 1))
                    break;
            } else {
                long nr;
                uintptr_t word;
                int in = thread_syscall(s, r, &nr, &word);
                if (in < 0)
                    break; /* the kernel does not say: take the GIL the usual way */
                if ((stopped = in == 1 && nr == SYS_futex && dg_gil_is_mutex(gil, word)))
                    break;
            }
        }
        int64_t waited = clock_ns(CLOCK_MONOTONIC) - since;
        if (waited > STOP_WAIT_NS)
            r = NULL; /* inside a long C call that keeps the GIL: take it the usual way */
        else if (waited > 2000)
            sched_yield(); /* the holder may want this core to reach its check */
    }
    if (!stopped) {
        head_unlock();
        pthread_mutex_unlock(&gil->mutex);
        s->stop_missed++;
        return 0;
    }
    s->stopped++;
    s->last_stop_ns = now;
    s->stopped_by_word += (uint64_t)(s->by_word = by_word);
    return 1;
}

/* Keep the thread's own CPU within its budget (a share of a core) as a token bucket: the wall
 * time since the last tick earns its share, the tick (waking up included) pays what it cost, and
 * while in debt the next tick waits until the debt is paid. A dear tick now and then (names read
 * with the GIL, stacks read cold) is paid from what cheap ticks saved, so it does not slow the
 * ticks after it; a mean of recent ticks instead stretched the interval for as long as the dear
 * one stayed in it, and the slower ticks, colder, cost more again. */
static void account(Sampler *s, int64_t cost_ns, int64_t now_ns, int64_t spacing_ns)
{
    s->cpu_ns += (uint64_t)(cost_ns > 0 ? cost_ns : 0);
    double share = BUDGET_AIM * s->budget; /* CPU nanoseconds a wall nanosecond earns */
    s->credit_ns += share * (double)(now_ns - s->credit_at) - (double)cost_ns;
    s->credit_at = now_ns;
    if (s->credit_ns > share * (double)BURST_NS)
        s->credit_ns = share * (double)BURST_NS;
    double floor_ns = 1e9 / s->hz;
    double owed_ns = s->credit_ns < 0 ? -s->credit_ns / share : 0;
    s->interval_ns = (int64_t)(owed_ns > floor_ns ? owed_ns : floor_ns);
    double fade = RATE_WINDOW_NS / (RATE_WINDOW_NS + (double)spacing_ns);
    if (fade < 1.0 - 1.0 / RATE_TICKS)
        fade = 1.0 - 1.0 / RATE_TICKS;
    s->rate_ticks = s->rate_ticks * fade + 1;
    s->rate_ns = s->rate_ns * fade + (double)spacing_ns;
}

/* Empty the eventfd of a stop's count that nobody waited for (it would keep the poll ready). */
static void drain_wake(Sampler *s)
{
    uint64_t stale;
    if (s->wake_open && read(s->wake_fd, &stale, sizeof(stale)) < 0 && errno != EAGAIN)
        s->wake_open = 0;
}

/* Sleep until `deadline` (monotonic): 1 if asked to stop. A poll on the stop's eventfd, not a
 * condition variable: every futex wait and wake walks a chain of the process's futex hash, and a
 * crowd of parked threads makes those chains long (Linux 6.16 and later give a process 16 slots
 * on a 2-CPU machine); with 1,000 parked threads a timed condition wait cost 25-35 us more. */
static int sleep_until(Sampler *s, int64_t deadline)
{
    while (!__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE)) {
        int64_t left = deadline - clock_ns(CLOCK_MONOTONIC);
        if (left <= 0)
            return 0;
        struct timespec t = {left / 1000000000LL, left % 1000000000LL};
        /* without an eventfd (none could be opened) the sleep runs out, and so does a stop */
        struct pollfd p = {s->wake_open ? s->wake_fd : -1, POLLIN, 0};
        if (ppoll(&p, 1, &t, NULL) > 0 && !__atomic_load_n(&s->stopping, __ATOMIC_ACQUIRE))
            drain_wake(s); /* from a stop before this start */
    }
    return 1;
}

static void *run(void *arg)
{
    Sampler *s = arg;
    PyThreadState *ts = PyThreadState_New(s->interp);
    if (ts == NULL)
        return NULL;
    PyEval_RestoreThread(ts);
    s->own = ts;
    int64_t last = clock_ns(CLOCK_MONOTONIC), deadline = last;
    int64_t spent = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    PyEval_SaveThread();
    while (!sleep_until(s, deadline += s->interval_ns) && !dg_finalizing()) {
        PyThreadState *holder;
        pthread_mutex_lock(&world_stop);
        int64_t asked = clock_ns(CLOCK_MONOTONIC);
        int stopped = stop_world(s, &holder);
        s->stop_ns += (uint64_t)(clock_ns(CLOCK_MONOTONIC) - asked);
        if (!stopped) {
            pthread_mutex_unlock(&world_stop);
            PyEval_RestoreThread(ts);
        }
        int64_t now = clock_ns(CLOCK_MONOTONIC);
        if (now - deadline > s->interval_ns) { /* fell behind: skip the missed ticks */
            s->dropped += (uint64_t)((now - deadline) / s->interval_ns);
            deadline = now;
        }
        int64_t spacing = now - last;
        tick(s, spacing, holder, stopped);
        int64_t walked = clock_ns(CLOCK_MONOTONIC);
        s->walk_ns += (uint64_t)(walked - now);
        last = now;
        if (stopped) {
            head_unlock();
            dg_gil_resume(dg_gil(s->interp), s->interp, holder, s->waiter);
            pthread_mutex_unlock(&world_stop);
            s->resume_ns += (uint64_t)(clock_ns(CLOCK_MONOTONIC) - walked);
        } else {
            PyEval_SaveThread();
        }
        /* the thread's whole CPU since the last tick: waking up and waiting cost too */
        int64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        account(s, cpu - spent, clock_ns(CLOCK_MONOTONIC), spacing);
        spent = cpu;
    }
    if (!dg_finalizing()) {
        PyEval_RestoreThread(ts);
        s->own = NULL;
        PyThreadState_Clear(ts);
        PyThreadState_DeleteCurrent();
    }
    return NULL;
}

/* -- the Python type -------------------------------------------------------------------------- */
static int alloc_tables(Sampler *s)
{
    s->threads = aligned_alloc(64, MAX_THREADS * sizeof(dg_thread));
    if (s->threads != NULL)
        memset(s->threads, 0, MAX_THREADS * sizeof(dg_thread));
    s->counters = calloc(MAX_COUNTERS, sizeof(dg_counter));
    if (!s->threads || !s->counters || dg_stacks_init(&s->st) ||
        dg_index_init(&s->thread_ix, MAX_THREADS) || dg_index_init(&s->counter_ix, MAX_COUNTERS))
        return -1;
    return 0;
}

/* The eventfd the thread sleeps on: a fresh one in a forked child, which must not share its
 * parent's (a stop there would wake the child's thread). */
static void init_sync(Sampler *s)
{
    if (s->wake_open)
        close(s->wake_fd);
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->wake_open = s->wake_fd >= 0;
}

/* Each sampling thread starts at the nominal rate with an empty bucket. */
static void fresh_bucket(Sampler *s)
{
    s->interval_ns = 1000000000LL / s->hz;
    s->rate_ticks = RATE_SEED, s->rate_ns = RATE_SEED * 1e9 / s->hz; /* nominal until measured */
    s->credit_ns = 0;
    s->credit_at = clock_ns(CLOCK_MONOTONIC);
}

static int Sampler_init(Sampler *s, PyObject *args, PyObject *kwds)
{
    static char *kw[] = {"hz", "budget", "active", "current_tasks", "max_depth", "stop", NULL};
    int hz, max_depth = 128, stop = 1;
    double budget;
    PyObject *active, *current = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "idO|Oip", kw, &hz, &budget, &active, &current,
                                     &max_depth, &stop))
        return -1;
    if (hz < 1 || hz > 10000 || budget <= 0 || max_depth < 1 || max_depth > MAX_DEPTH_CAP) {
        PyErr_SetString(PyExc_ValueError, "hz, budget or max_depth out of range");
        return -1;
    }
    if (s->threads != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a native Sampler is initialised once");
        return -1;
    }
    s->hz = hz;
    s->budget = budget;
    s->max_depth = max_depth;
    s->can_stop = DG_CAN_STOP && stop;
    fresh_bucket(s);
    Py_INCREF(active);
    s->active = active;
    if (current != Py_None) {
        Py_INCREF(current);
        s->current = current;
    }
    s->name_key = PyUnicode_InternFromString("_name");
    s->native_id_key = PyUnicode_InternFromString("_native_id");
    s->thread_id_key = PyUnicode_InternFromString("_thread_id");
    if (!s->name_key || !s->native_id_key || !s->thread_id_key)
        return -1;
    if (alloc_tables(s) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    init_sync(s);
    s->interp = PyInterpreterState_Main();
    return 0;
}

static PyObject *Sampler_start(Sampler *s, PyObject *Py_UNUSED(ignored))
{
    if (s->running)
        Py_RETURN_FALSE;
    if (PyThreadState_Get()->interp != s->interp) {
        PyErr_SetString(PyExc_RuntimeError, "the native sampler runs in the main interpreter only");
        return NULL;
    }
    __atomic_store_n(&s->stopping, 0, __ATOMIC_RELEASE);
    drain_wake(s); /* the last stop's count */
    fresh_bucket(s);
    s->switches_valid = 0; /* the first tick reads every thread */
    sigset_t all, old;
    sigfillset(&all); /* signals belong to Python's main thread, never to the sampler */
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, run, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    s->running = 1;
    running_samplers++;
    Py_RETURN_TRUE;
}

static PyObject *Sampler_stop(Sampler *s, PyObject *Py_UNUSED(ignored))
{
    if (!s->running)
        Py_RETURN_FALSE;
    s->running = 0; /* a second stop() returns at once */
    running_samplers--;
    __atomic_store_n(&s->stopping, 1, __ATOMIC_RELEASE);
    uint64_t one = 1;
    if (s->wake_open && write(s->wake_fd, &one, sizeof(one)) < 0)
        s->wake_open = 0; /* the sleep runs out instead */
    pthread_t thread = s->thread;
    Py_BEGIN_ALLOW_THREADS
    pthread_join(thread, NULL);
    Py_END_ALLOW_THREADS
    threads_forget_fds(s);
    Py_RETURN_TRUE;
}

/* Hand every counter to Python. */
static PyObject *Sampler_drain(Sampler *s, PyObject *Py_UNUSED(ignored))
{
    settle_all(s);
    uint32_t n = s->ncounters;
    dg_counter *copy = NULL;
    if (n > 0) {
        copy = malloc(sizeof(dg_counter) * n);
        if (copy == NULL)
            return PyErr_NoMemory();
        memcpy(copy, s->counters, sizeof(dg_counter) * n); /* the task references move along */
        s->ncounters = 0;
        dg_index_clear(&s->counter_ix);
    }
    /* From here on a tick may run (an allocation can collect garbage and let go of the GIL):
     * it fills the emptied table while this builds objects from the copy. */
    PyObject *out = PyList_New(n);
    for (uint32_t i = 0; out != NULL && i < n; i++) {
        dg_counter *c = &copy[i];
        PyObject *item = Py_BuildValue(
            "(kNIOLLLL)", c->ident, PyUnicode_DecodeUTF8(c->name, strlen(c->name), "replace"),
            c->stack, c->task != NULL ? c->task : Py_None, (long long)c->cpu_n,
            (long long)c->cpu_ns, (long long)c->wall_n, (long long)c->wall_ns);
        if (item == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, i, item);
    }
    for (uint32_t i = 0; i < n; i++)
        Py_XDECREF(copy[i].task);
    free(copy);
    if (out == NULL)
        return NULL;
    return Py_BuildValue("(KN)", (unsigned long long)s->st.generation, out);
}

/* The stack `id` of `generation`, innermost first, as (code, globals, line) tuples; None if the
 * tables were emptied since. */
static PyObject *Sampler_frames(Sampler *s, PyObject *args)
{
    unsigned long long generation;
    unsigned int id;
    if (!PyArg_ParseTuple(args, "KI", &generation, &id))
        return NULL;
    return dg_stack_frames(&s->st, generation, id);
}

/* Empty the stack and code tables (when they are filling up, after a drain): the next ticks walk
 * every thread anew. Counters taken since the drain are dropped with them, and counted. */
static PyObject *Sampler_compact(Sampler *s, PyObject *args)
{
    int force = 0;
    if (!PyArg_ParseTuple(args, "|p", &force))
        return NULL;
    if (!force && !dg_stacks_filling(&s->st))
        Py_RETURN_FALSE;
    size_t nrefs;
    PyObject **refs = dg_stacks_clear(&s->st, &nrefs);
    if (refs == NULL)
        return PyErr_NoMemory();
    uint32_t ncounters = s->ncounters;
    PyObject **tasks = malloc(sizeof(PyObject *) * (ncounters + 1));
    if (tasks == NULL) {
        dg_drop_refs(refs, nrefs);
        return PyErr_NoMemory();
    }
    for (int i = 0; i < s->nthreads; i++)
        wall_flush(s, &s->threads[i]);
    for (uint32_t i = 0; i < ncounters; i++) {
        tasks[i] = s->counters[i].task;
        s->lost += (uint64_t)s->counters[i].wall_n;
    }
    s->ncounters = 0;
    dg_index_clear(&s->counter_ix);
    for (int i = 0; i < s->nthreads; i++) {
        s->threads[i].wall_valid = 0;
        s->threads[i].walked = 0;
        s->threads[i].run_valid = 0;
        s->threads[i].pending = 0;
        s->threads[i].held = 0;
    }
    dg_drop_refs(refs, nrefs); /* last: a finaliser may run Python, and a tick with it */
    dg_drop_refs(tasks, ncounters);
    Py_RETURN_TRUE;
}

static void ring_release(dg_tick_record *ring, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        Py_XDECREF(ring[i].task);
}

/* Keep every thread sample of every tick (for a trace), or stop keeping them. */
static PyObject *Sampler_keep_ticks(Sampler *s, PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
    if (on && s->ring == NULL) {
        s->ring = calloc(RING_CAP, sizeof(dg_tick_record));
        if (s->ring == NULL)
            return PyErr_NoMemory();
        s->nring = 0;
    } else if (!on && s->ring != NULL) {
        dg_tick_record *ring = s->ring;
        uint32_t n = s->nring;
        s->ring = NULL;
        s->nring = 0;
        ring_release(ring, n);
        free(ring);
    }
    Py_RETURN_NONE;
}

/* The kept thread samples since the last call: (generation, [(time_ns, ident, name, stack, task,
 * cpu_ns, wall_ns)]). */
static PyObject *Sampler_drain_ticks(Sampler *s, PyObject *Py_UNUSED(ignored))
{
    uint32_t n = s->ring != NULL ? s->nring : 0;
    dg_tick_record *copy = NULL;
    if (n > 0) {
        copy = malloc(sizeof(dg_tick_record) * n);
        if (copy == NULL)
            return PyErr_NoMemory();
        memcpy(copy, s->ring, sizeof(dg_tick_record) * n);
        s->nring = 0;
    }
    PyObject *out = PyList_New(n);
    for (uint32_t i = 0; out != NULL && i < n; i++) {
        dg_tick_record *t = &copy[i];
        PyObject *item = Py_BuildValue(
            "(LkNIOLL)", (long long)t->time_ns, t->ident,
            PyUnicode_DecodeUTF8(t->name, strlen(t->name), "replace"), t->stack,
            t->task != NULL ? t->task : Py_None, (long long)t->cpu_ns, (long long)t->wall_ns);
        if (item == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, i, item);
    }
    ring_release(copy, n);
    free(copy);
    if (out == NULL)
        return NULL;
    return Py_BuildValue("(KN)", (unsigned long long)s->st.generation, out);
}

static PyObject *Sampler_stats(Sampler *s, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue(
        "{sKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsdsIsIsIsisi}", "cpu_ns", (unsigned long long)s->cpu_ns,
        "quiet_ticks", (unsigned long long)s->quiet_ticks, "walk_ns",
        (unsigned long long)s->walk_ns, "stop_ns", (unsigned long long)s->stop_ns,
        "resume_ns", (unsigned long long)s->resume_ns, "samples",
        (unsigned long long)s->samples, "ticks", (unsigned long long)s->ticks, "dropped",
        (unsigned long long)s->dropped, "lost", (unsigned long long)s->lost, "head_busy",
        (unsigned long long)s->head_busy, "threads_over", (unsigned long long)s->threads_over,
        "ring_lost", (unsigned long long)s->ring_lost, "state_unread",
        (unsigned long long)s->state_unread, "stopped", (unsigned long long)s->stopped,
        "stopped_by_word", (unsigned long long)s->stopped_by_word,
        "stop_missed", (unsigned long long)s->stop_missed, "effective_hz",
        1e9 * s->rate_ticks / s->rate_ns,
        "stacks", s->st.nstacks, "codes", s->st.ncodes, "counters", s->ncounters, "threads",
        s->nthreads, "running", running_samplers);
}

/* After fork: the sampler thread did not come along, and its locks may be held forever. */
static PyObject *Sampler_forget_in_child(Sampler *s, PyObject *Py_UNUSED(ignored))
{
    init_sync(s);
    if (s->running)
        running_samplers = 0;
    s->running = s->stopping = 0;
    s->own = NULL; /* freed with the parent's other thread states */
    threads_forget_fds(s); /* they name the parent's threads */
    s->nthreads = s->npairs = 0;
    s->unresolved = 0;
    s->switches_valid = 0;
    dg_index_clear(&s->thread_ix);
    PyObject *r = Sampler_drain(s, NULL); /* the parent's samples are not the child's */
    Py_XDECREF(r);
    if (r == NULL)
        return NULL;
    Py_RETURN_NONE;
}

static void Sampler_dealloc(Sampler *s)
{
    if (s->running) {
        PyObject *r = Sampler_stop(s, NULL);
        Py_XDECREF(r);
    }
    if (s->threads != NULL) {
        PyObject *r = Sampler_keep_ticks(s, Py_False);
        Py_XDECREF(r);
        for (uint32_t i = 0; i < s->ncounters; i++)
            Py_XDECREF(s->counters[i].task);
    }
    if (s->wake_open)
        close(s->wake_fd);
    free(s->threads);
    free(s->counters);
    dg_stacks_free(&s->st, 1);
    dg_index_free(&s->thread_ix);
    dg_index_free(&s->counter_ix);
    Py_XDECREF(s->active);
    Py_XDECREF(s->current);
    Py_XDECREF(s->name_key);
    Py_XDECREF(s->native_id_key);
    Py_XDECREF(s->thread_id_key);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef Sampler_methods[] = {
    {"start", (PyCFunction)Sampler_start, METH_NOARGS, "Start the sampling thread."},
    {"stop", (PyCFunction)Sampler_stop, METH_NOARGS, "Stop the thread and wait for it."},
    {"drain", (PyCFunction)Sampler_drain, METH_NOARGS, "(generation, counters) since the last drain."},
    {"frames", (PyCFunction)Sampler_frames, METH_VARARGS, "frames(generation, stack id)."},
    {"compact", (PyCFunction)Sampler_compact, METH_VARARGS, "Empty full stack tables."},
    {"keep_ticks", (PyCFunction)Sampler_keep_ticks, METH_O, "Keep every tick's samples or not."},
    {"drain_ticks", (PyCFunction)Sampler_drain_ticks, METH_NOARGS, "The kept tick samples."},
    {"stats", (PyCFunction)Sampler_stats, METH_NOARGS, "Counts, as a dict."},
    {"forget_in_child", (PyCFunction)Sampler_forget_in_child, METH_NOARGS, "Reset after fork."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SamplerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "duragraph_pprof._native.Sampler",
    .tp_basicsize = sizeof(Sampler),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Sampler_init,
    .tp_dealloc = (destructor)Sampler_dealloc,
    .tp_methods = Sampler_methods,
    .tp_doc = "The native stack sampler: Sampler(hz, budget, threading._active, "
              "asyncio.tasks._current_tasks, max_depth=128).",
};

extern PyMethodDef dg_heap_methods[]; /* heap.c */

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "_native", "The profiler's native hot paths.", -1, dg_heap_methods,
};

PyMODINIT_FUNC PyInit__native(void)
{
    if (PyType_Ready(&SamplerType) < 0)
        return NULL;
    static int fork_guarded;
    if (!fork_guarded && pthread_atfork(world_stop_lock, world_stop_unlock, world_stop_unlock))
        return PyErr_Format(PyExc_OSError, "pthread_atfork failed");
    fork_guarded = 1;
    PyObject *m = PyModule_Create(&native_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&SamplerType);
    if (PyModule_AddObject(m, "Sampler", (PyObject *)&SamplerType) < 0) {
        Py_DECREF(&SamplerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
