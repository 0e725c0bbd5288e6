/* The sampled heap: a wrapper around the Python allocators (the MEM and OBJ domains, whose
 * callers hold the GIL) that picks one allocation per `rate` bytes on average, as Go's
 * MemProfileRate does: a countdown of bytes drawn from an exponential with mean `rate`. A picked
 * block's size and allocating stack (the same walk as the stack sampler's: the allocating thread
 * holds the GIL) are recorded, and its free or resize is noticed. An unpicked allocation pays a
 * subtraction; a free, one hash lookup while any picked block is live.
 *
 * Inside a hook nothing calls Python, allocates through Python's allocators, or drops a
 * reference: the tables are plain memory sized at start. RAW is left alone (its callers may not
 * hold the GIL, and blocks over 512 bytes would be counted twice). Unhooking is last-in first-out:
 * if another hook sits above ours, ours stays in the chain and only forwards.
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

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stacks.h"

#define LIVE_CAP 65536 /* picked blocks alive at once: 32 GiB of heap at the default rate */
#define LIVE_SLOTS (LIVE_CAP * 2)
#define HEAP_DEPTH_CAP 512
#define FILTER_SLOTS 65536 /* picked blocks by address bits: a free asks the live table only
                             * where one may be; the bits (8 KiB) stay in the first-level cache */

typedef struct {
    PyMemAllocatorDomain domain;
    PyMemAllocatorEx saved;
    int hooked; /* ours is in this domain's chain */
} dg_domain;

typedef struct {
    void *ptr; /* NULL: an empty slot */
    uint64_t size;
    uint32_t stack;
} dg_live;

static struct {
    int on;   /* sampling (the hooks forward only when off) */
    int busy; /* in the hook's own recording: an allocation there is never picked */
    int64_t rate, countdown;
    uint64_t rng;
    int max_depth;
    dg_stacks st;
    int64_t *alloc_n, *alloc_bytes; /* by stack id */
    dg_live *live;
    uint8_t *filter; /* picked blocks live per slot; bits[] says which are not 0 */
    uint64_t bits[FILTER_SLOTS / 64];
    uint32_t nlive;
    uint64_t picked, lost, freed;
    dg_frame walk_buf[HEAP_DEPTH_CAP];
} H;

static dg_domain dom_mem = {PYMEM_DOMAIN_MEM, {0}, 0};
static dg_domain dom_obj = {PYMEM_DOMAIN_OBJ, {0}, 0};

static PyThreadState *current_tstate(void)
{ /* never aborts on NULL, unlike PyThreadState_Get */
#if PY_VERSION_HEX >= 0x030D0000
    return PyThreadState_GetUnchecked();
#else
    return _PyThreadState_UncheckedGet();
#endif
}

static int64_t next_gap(void)
{ /* xorshift64*, then -ln(u) * rate: the bytes until the next pick */
    if (H.rate <= 1)
        return 0;
    H.rng ^= H.rng >> 12;
    H.rng ^= H.rng << 25;
    H.rng ^= H.rng >> 27;
    uint64_t r = H.rng * 0x2545F4914F6CDD1DULL;
    double u = ((double)(r >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
    return (int64_t)(-log(u) * (double)H.rate) + 1;
}

/* -- the live table: open addressing on the block's address, backward-shift deletion ------- */
static inline uint32_t live_home(const void *p)
{
    return (uint32_t)dg_mix((uintptr_t)p) & (LIVE_SLOTS - 1);
}

/* Blocks are 16-byte aligned: the next 16 bits of the address spread a pool's blocks over
 * distinct slots and cost no multiply on every free. */
static inline uint32_t filter_slot(const void *p)
{
    return (uint32_t)((uintptr_t)p >> 4) & (FILTER_SLOTS - 1);
}

static inline int maybe_live(const void *p)
{
    uint32_t i = filter_slot(p);
    return (int)((H.bits[i >> 6] >> (i & 63)) & 1);
}

static void live_add(void *p, uint64_t size, uint32_t stack)
{
    if (H.nlive >= LIVE_CAP) {
        H.lost++;
        return;
    }
    uint32_t i = live_home(p);
    while (H.live[i].ptr != NULL && H.live[i].ptr != p)
        i = (i + 1) & (LIVE_SLOTS - 1);
    if (H.live[i].ptr == NULL) {
        H.nlive++;
        uint32_t f = filter_slot(p);
        if (H.filter[f] < UINT8_MAX) /* a saturated count stays: the table is then always asked */
            H.filter[f]++;
        H.bits[f >> 6] |= 1ULL << (f & 63);
    }
    H.live[i].ptr = p;
    H.live[i].size = size;
    H.live[i].stack = stack;
}

static __attribute__((noinline)) void live_remove(const void *p)
{
    uint32_t i = live_home(p);
    while (H.live[i].ptr != p) {
        if (H.live[i].ptr == NULL)
            return; /* not a picked block */
        i = (i + 1) & (LIVE_SLOTS - 1);
    }
    H.freed++;
    H.nlive--;
    uint32_t f = filter_slot(p);
    if (H.filter[f] < UINT8_MAX && --H.filter[f] == 0)
        H.bits[f >> 6] &= ~(1ULL << (f & 63));
    for (uint32_t j = i;;) { /* pull later entries of the run back over the hole */
        j = (j + 1) & (LIVE_SLOTS - 1);
        if (H.live[j].ptr == NULL)
            break;
        uint32_t k = live_home(H.live[j].ptr);
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            H.live[i] = H.live[j];
            i = j;
        }
    }
    H.live[i].ptr = NULL;
}

/* -- the hooks -------------------------------------------------------------------------------- */
static void pick(void *p, size_t size)
{
    H.busy = 1;
    PyThreadState *ts = current_tstate();
    int depth = ts != NULL ? dg_walk(ts, H.walk_buf, H.max_depth) : 0;
    uint32_t id = dg_stack_intern(&H.st, H.walk_buf, depth);
    if (id == 0) {
        H.lost++;
    } else {
        H.picked++;
        H.alloc_n[id]++;
        H.alloc_bytes[id] += (int64_t)size;
        live_add(p, size, id);
    }
    H.countdown = next_gap();
    H.busy = 0;
}

/* The hot paths below end in a tail call to the allocator they wrap and keep no frame: an
 * unpicked allocation pays a decrement and a jump, a free a bit test and a jump. What is rare
 * (a pick, a picked block's free) is out of line. */
static __attribute__((noinline)) void *picking(dg_domain *d, void *p, size_t size)
{
    if (!H.on)
        H.countdown = INT64_MAX; /* left in a chain while off: only forwards */
    else if (p != NULL && !H.busy)
        pick(p, size);
    return p;
}

static __attribute__((noinline)) void free_picked(dg_domain *d, void *p)
{
    if (p != NULL) /* NULL's bit is slot 0's, which a picked block may have set */
        live_remove(p);
    d->saved.free(d->saved.ctx, p);
}

static inline int picks(size_t size)
{ /* the countdown also runs while off, so that reaches_us() sees the hook reached */
    H.countdown -= (int64_t)size;
    return __builtin_expect(H.countdown <= 0, 0);
}

static inline int may_be_picked(const void *p)
{ /* nearly never: no picked block has these bits (NULL is told apart out of line) */
    return __builtin_expect(maybe_live(p), 0);
}

static inline void freeing(void *p)
{
    if (p != NULL && may_be_picked(p))
        live_remove(p);
}

static void *h_malloc(void *ctx, size_t size)
{
    dg_domain *d = ctx;
    if (picks(size))
        return picking(d, d->saved.malloc(d->saved.ctx, size), size);
    return d->saved.malloc(d->saved.ctx, size);
}

static void *h_calloc(void *ctx, size_t n, size_t elsize)
{
    dg_domain *d = ctx;
    if (picks(n * elsize))
        return picking(d, d->saved.calloc(d->saved.ctx, n, elsize), n * elsize);
    return d->saved.calloc(d->saved.ctx, n, elsize);
}

static void *h_realloc(void *ctx, void *old, size_t size)
{
    dg_domain *d = ctx;
    void *p = d->saved.realloc(d->saved.ctx, old, size);
    if (p != NULL) { /* on failure the old block is kept, and so is its record */
        freeing(old);
        if (picks(size))
            picking(d, p, size);
    }
    return p;
}

static void h_free(void *ctx, void *p)
{
    dg_domain *d = ctx;
    if (may_be_picked(p))
        free_picked(d, p);
    else
        d->saved.free(d->saved.ctx, p);
}

static void hook(dg_domain *d)
{
    if (d->hooked)
        return; /* still in the chain from an earlier start */
    PyMemAllocatorEx mine = {d, h_malloc, h_calloc, h_realloc, h_free};
    PyMem_GetAllocator(d->domain, &d->saved);
    PyMem_SetAllocator(d->domain, &mine);
    d->hooked = 1;
}

static int on_top(dg_domain *d)
{
    PyMemAllocatorEx current;
    PyMem_GetAllocator(d->domain, &current);
    return current.malloc == h_malloc && current.ctx == d;
}

/* Whether an allocation in the domain still passes through our hook (H.on): a hook set before
 * ours that takes itself off puts back what it had found and cuts ours out of the chain
 * (tracemalloc.stop() of a tracemalloc started first). */
static int reaches_us(dg_domain *d)
{
    int64_t countdown = H.countdown;
    uint64_t picked = H.picked;
    void *p = d->domain == PYMEM_DOMAIN_MEM ? PyMem_Malloc(64) : PyObject_Malloc(64);
    if (d->domain == PYMEM_DOMAIN_MEM)
        PyMem_Free(p);
    else
        PyObject_Free(p);
    return p == NULL || H.countdown != countdown || H.picked != picked;
}

/* Only from the top of the chain: a hook set since wraps ours, and would call a freed saved
 * pair. Ours then stays where it is and only forwards (H.on is off). One cut out of the chain is
 * in none: the next start hooks afresh. */
static void unhook(dg_domain *d)
{
    if (!d->hooked)
        return;
    if (on_top(d)) {
        PyMem_SetAllocator(d->domain, &d->saved);
        d->hooked = 0;
    } else if (!reaches_us(d)) {
        d->hooked = 0;
    }
}

/* -- Python ----------------------------------------------------------------------------------- */
static int tables(void)
{
    if (H.live != NULL)
        return 0;
    H.live = calloc(LIVE_SLOTS, sizeof(dg_live));
    H.filter = calloc(FILTER_SLOTS, 1);
    H.alloc_n = calloc(MAX_STACKS + 1, sizeof(int64_t));
    H.alloc_bytes = calloc(MAX_STACKS + 1, sizeof(int64_t));
    if (!H.live || !H.filter || !H.alloc_n || !H.alloc_bytes || dg_stacks_init(&H.st) < 0)
        return -1;
    return 0;
}

static PyObject *heap_start(PyObject *m, PyObject *args)
{
    long long rate, seed;
    int max_depth;
    if (!PyArg_ParseTuple(args, "LiL", &rate, &max_depth, &seed))
        return NULL;
    if (rate < 1 || max_depth < 1 || max_depth > HEAP_DEPTH_CAP) {
        PyErr_SetString(PyExc_ValueError, "rate or max_depth out of range");
        return NULL;
    }
    if (H.on)
        Py_RETURN_FALSE;
    if (tables() < 0) {
        PyErr_NoMemory();
        return NULL;
    }
    /* a fresh start: what an earlier one counted is dropped */
    size_t nrefs;
    PyObject **refs = dg_stacks_clear(&H.st, &nrefs);
    if (refs == NULL)
        return PyErr_NoMemory();
    memset(H.live, 0, sizeof(dg_live) * LIVE_SLOTS);
    memset(H.filter, 0, FILTER_SLOTS);
    memset(H.bits, 0, sizeof(H.bits));
    memset(H.alloc_n, 0, sizeof(int64_t) * (MAX_STACKS + 1));
    memset(H.alloc_bytes, 0, sizeof(int64_t) * (MAX_STACKS + 1));
    H.nlive = 0;
    H.picked = H.lost = H.freed = 0;
    H.rate = rate;
    H.max_depth = max_depth;
    H.rng = (uint64_t)seed | 1;
    H.countdown = next_gap();
    dg_drop_refs(refs, nrefs);
    hook(&dom_mem);
    hook(&dom_obj);
    H.on = 1;
    Py_RETURN_TRUE;
}

static PyObject *heap_stop(PyObject *m, PyObject *Py_UNUSED(ignored))
{
    if (!H.on)
        Py_RETURN_FALSE;
    unhook(&dom_obj); /* the reverse order of hook(); while H.on, to see whether ours is reached */
    unhook(&dom_mem);
    H.on = 0;
    Py_RETURN_TRUE;
}

/* (generation, rate, [(stack id, alloc objects, alloc bytes, inuse objects, inuse bytes)],
 * stats): raw sampled counts, unscaled. */
static PyObject *heap_snapshot(PyObject *m, PyObject *Py_UNUSED(ignored))
{
    if (H.live == NULL)
        Py_RETURN_NONE;
    uint32_t n = H.st.nstacks;
    int64_t *agg = calloc(((size_t)n + 1) * 4, sizeof(int64_t)); /* libc: no hook runs */
    if (agg == NULL)
        return PyErr_NoMemory();
    for (uint32_t i = 0; i < LIVE_SLOTS; i++) {
        dg_live *e = &H.live[i];
        if (e->ptr != NULL && e->stack <= n) {
            agg[e->stack * 4 + 2]++;
            agg[e->stack * 4 + 3] += (int64_t)e->size;
        }
    }
    for (uint32_t id = 1; id <= n; id++) {
        agg[id * 4] = H.alloc_n[id];
        agg[id * 4 + 1] = H.alloc_bytes[id];
    }
    uint64_t generation = H.st.generation;
    /* From here on Python objects are made: the hooks may pick blocks meanwhile, into the
     * tables, not into this copy. */
    PyObject *out = PyList_New(0);
    for (uint32_t id = 1; out != NULL && id <= n; id++) {
        if (agg[id * 4] == 0)
            continue;
        PyObject *item = Py_BuildValue("(ILLLL)", id, (long long)agg[id * 4],
                                       (long long)agg[id * 4 + 1], (long long)agg[id * 4 + 2],
                                       (long long)agg[id * 4 + 3]);
        if (item == NULL || PyList_Append(out, item) < 0)
            Py_CLEAR(out);
        Py_XDECREF(item);
    }
    free(agg);
    if (out == NULL)
        return NULL;
    int attached = !H.on || (reaches_us(&dom_mem) && reaches_us(&dom_obj));
    return Py_BuildValue("(KLN{sKsKsKsIsisisisi})", (unsigned long long)generation,
                         (long long)H.rate, out, "picked", (unsigned long long)H.picked, "lost",
                         (unsigned long long)H.lost, "freed", (unsigned long long)H.freed,
                         "live", H.nlive, "on", H.on, "mem_on_top", on_top(&dom_mem),
                         "obj_on_top", on_top(&dom_obj), "attached", attached);
}

static PyObject *heap_frames(PyObject *m, PyObject *args)
{
    unsigned long long generation;
    unsigned int id;
    if (!PyArg_ParseTuple(args, "KI", &generation, &id))
        return NULL;
    if (H.live == NULL)
        Py_RETURN_NONE;
    return dg_stack_frames(&H.st, generation, id);
}

PyMethodDef dg_heap_methods[] = {
    {"heap_start", heap_start, METH_VARARGS,
     "heap_start(rate, max_depth, seed): hook the MEM and OBJ allocators; False if on."},
    {"heap_stop", heap_stop, METH_NOARGS, "Unhook (or, if wrapped since, only forward)."},
    {"heap_snapshot", heap_snapshot, METH_NOARGS, "The sampled counts by stack."},
    {"heap_frames", heap_frames, METH_VARARGS, "heap_frames(generation, stack id)."},
    {NULL, NULL, 0, NULL},
};
