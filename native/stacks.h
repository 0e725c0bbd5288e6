/* Interned stacks of (code object, instruction offset), shared by the stack sampler and the heap
 * sampler. Interning allocates, frees and calls nothing: the arrays are sized once. A code object
 * is kept alive by a reference taken on its first insert (so its address cannot come to name
 * another one), with the globals it ran in (for its module's name); those references are dropped
 * only from Python (dg_stacks_clear), where a finaliser may run.
 */
#ifndef DURAGRAPH_STACKS_H
#define DURAGRAPH_STACKS_H

#include "tables.h"
#include "walk.h"

#define MAX_STACKS 32768
#define MAX_FRAMES (1u << 19)
#define MAX_CODES 16384

typedef struct {
    PyObject *code;
    int lasti;
} dg_site;

typedef struct {
    uint64_t hash;
    uint32_t start;
    uint32_t depth;
} dg_stack;

typedef struct {
    PyObject *code;    /* strong */
    PyObject *globals; /* strong, may be NULL */
} dg_code;

typedef struct {
    dg_stack *stacks;
    dg_index stack_ix;
    uint32_t nstacks; /* ids are 1..nstacks; 0 is "no room left" */
    dg_site *sites;
    uint32_t nsites;
    dg_code *codes;
    dg_index code_ix;
    uint32_t ncodes;
    uint64_t generation; /* bumped when emptied: ids of an older generation mean nothing */
} dg_stacks;

static inline int dg_stacks_init(dg_stacks *t)
{
    t->stacks = calloc(MAX_STACKS, sizeof(dg_stack));
    t->sites = calloc(MAX_FRAMES, sizeof(dg_site));
    t->codes = calloc(MAX_CODES, sizeof(dg_code));
    if (!t->stacks || !t->sites || !t->codes || dg_index_init(&t->stack_ix, MAX_STACKS) ||
        dg_index_init(&t->code_ix, MAX_CODES))
        return -1;
    return 0;
}

static inline int dg_same_sites(const dg_stacks *t, const dg_stack *st, const dg_frame *f)
{
    const dg_site *a = &t->sites[st->start];
    for (uint32_t i = 0; i < st->depth; i++)
        if (a[i].code != f[i].code || a[i].lasti != f[i].lasti)
            return 0;
    return 1;
}

static inline int32_t dg_code_find(const dg_stacks *t, PyObject *code)
{
    uint32_t slot;
    DG_PROBE(&t->code_ix, dg_mix((uintptr_t)code), t->codes[e].code == code, slot);
    return t->code_ix.slots[slot];
}

static inline int dg_code_keep(dg_stacks *t, PyObject *code, PyObject *globals)
{
    uint32_t slot;
    DG_PROBE(&t->code_ix, dg_mix((uintptr_t)code), t->codes[e].code == code, slot);
    if (t->code_ix.slots[slot] >= 0)
        return 0;
    if (t->ncodes >= MAX_CODES)
        return -1;
    Py_INCREF(code); /* a reference count, no allocation */
    Py_XINCREF(globals);
    t->codes[t->ncodes].code = code;
    t->codes[t->ncodes].globals = globals;
    t->code_ix.slots[slot] = (int32_t)t->ncodes++;
    return 0;
}

/* The id of the stack f[0..n) (innermost first), or 0 when a table has no room left. */
static inline uint32_t dg_stack_intern(dg_stacks *t, const dg_frame *f, int n)
{
    uint64_t h = (uint64_t)n;
    for (int i = 0; i < n; i++)
        h = dg_mix(h ^ (uintptr_t)f[i].code ^ ((uint64_t)(uint32_t)f[i].lasti << 40));
    uint32_t slot;
    DG_PROBE(&t->stack_ix, h,
             t->stacks[e].hash == h && t->stacks[e].depth == (uint32_t)n &&
                 dg_same_sites(t, &t->stacks[e], f),
             slot);
    int32_t e = t->stack_ix.slots[slot];
    if (e >= 0)
        return (uint32_t)e + 1;
    if (t->nstacks >= MAX_STACKS || t->nsites + (uint32_t)n > MAX_FRAMES)
        return 0;
    for (int i = 0; i < n; i++)
        if (dg_code_keep(t, f[i].code, f[i].globals) < 0)
            return 0;
    dg_stack *st = &t->stacks[t->nstacks];
    st->hash = h;
    st->start = t->nsites;
    st->depth = (uint32_t)n;
    for (int i = 0; i < n; i++) {
        t->sites[t->nsites + i].code = f[i].code;
        t->sites[t->nsites + i].lasti = f[i].lasti;
    }
    t->nsites += (uint32_t)n;
    t->stack_ix.slots[slot] = (int32_t)t->nstacks;
    return ++t->nstacks;
}

static inline int dg_stacks_filling(const dg_stacks *t)
{
    return t->nstacks >= MAX_STACKS / 4 * 3 || t->nsites >= MAX_FRAMES / 4 * 3 ||
           t->ncodes >= MAX_CODES / 4 * 3;
}

/* Python side: the stack `id` of `generation`, innermost first, as (code, globals, line)
 * tuples; None if the table was emptied since. */
static PyObject *dg_stack_frames(dg_stacks *t, uint64_t generation, uint32_t id)
{
    if (generation != t->generation || id == 0 || id > t->nstacks)
        Py_RETURN_NONE;
    dg_stack st = t->stacks[id - 1]; /* entries never move within a generation */
    PyObject *out = PyTuple_New(st.depth);
    for (uint32_t i = 0; out != NULL && i < st.depth; i++) {
        if (generation != t->generation) { /* emptied while this allocated */
            Py_DECREF(out);
            Py_RETURN_NONE;
        }
        dg_site site = t->sites[st.start + i];
        int32_t e = dg_code_find(t, site.code);
        PyObject *globals = e >= 0 && t->codes[e].globals ? t->codes[e].globals : Py_None;
        int line = PyCode_Addr2Line((PyCodeObject *)site.code,
                                    site.lasti * (int)sizeof(_Py_CODEUNIT));
        PyObject *item = Py_BuildValue("(OOi)", site.code, globals, line);
        if (item == NULL)
            Py_CLEAR(out);
        else
            PyTuple_SET_ITEM(out, i, item);
    }
    return out;
}

/* Empty the table and hand back the references it held (2 per code object), for the caller to
 * drop once its own state is consistent again: a finaliser may run Python, and a tick with it. */
static PyObject **dg_stacks_clear(dg_stacks *t, size_t *nrefs)
{
    PyObject **refs = malloc(sizeof(PyObject *) * (2 * (size_t)t->ncodes + 1));
    if (refs == NULL)
        return NULL;
    size_t k = 0;
    for (uint32_t i = 0; i < t->ncodes; i++) {
        refs[k++] = t->codes[i].code;
        refs[k++] = t->codes[i].globals;
    }
    t->ncodes = t->nstacks = t->nsites = 0;
    dg_index_clear(&t->code_ix);
    dg_index_clear(&t->stack_ix);
    t->generation++;
    *nrefs = k;
    return refs;
}

static inline void dg_drop_refs(PyObject **refs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        Py_XDECREF(refs[i]);
    free(refs);
}

/* Free the arrays; the references go only if `drop` (Python side, at the end). */
static inline void dg_stacks_free(dg_stacks *t, int drop)
{
    if (drop && t->codes != NULL)
        for (uint32_t i = 0; i < t->ncodes; i++) {
            Py_XDECREF(t->codes[i].code);
            Py_XDECREF(t->codes[i].globals);
        }
    free(t->stacks);
    free(t->sites);
    free(t->codes);
    dg_index_free(&t->stack_ix);
    dg_index_free(&t->code_ix);
    t->stacks = NULL;
    t->sites = NULL;
    t->codes = NULL;
}

#endif
