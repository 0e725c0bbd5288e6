/* Reading a thread's interpreter frames without creating, freeing or calling anything.
 *
 * One set of field accesses per CPython minor version, through that version's own headers.
 * The caller holds the GIL, so the chain is frozen while it is read. Frames that Python code
 * cannot see (3.11+ frames still in their prologue, 3.12+ C-stack shims) are skipped, as
 * sys._current_frames() and f_back skip them; the walk stops at `max` frames, innermost first.
 */
#ifndef DURAGRAPH_WALK_H
#define DURAGRAPH_WALK_H

#if PY_VERSION_HEX < 0x030A0000 || PY_VERSION_HEX >= 0x030E0000
#error "the native walk supports CPython 3.10 to 3.13"
#endif

typedef struct {
    PyObject *code;    /* borrowed: the caller keeps what it stores alive */
    PyObject *globals; /* borrowed: the frame's globals, for the module name */
    int lasti;         /* index of the instruction, in code units; -1 before the first */
} dg_frame;

/* The innermost frame as it lies in memory (frame, code, instruction pointers), read without
 * following the code object: equal marks at two ticks mean a thread that did not move, which is
 * what most threads are. Only compared, never followed. */
typedef struct {
    const void *frame, *code, *instr;
} dg_mark;

static inline int dg_same_mark(dg_mark a, dg_mark b)
{
    return a.frame == b.frame && a.code == b.code && a.instr == b.instr;
}

#if PY_VERSION_HEX >= 0x030B0000
typedef _PyInterpreterFrame dg_iframe;

static inline dg_iframe *dg_current(PyThreadState *ts)
{
#if PY_VERSION_HEX >= 0x030D0000
    return ts->current_frame;
#else
    return ts->cframe != NULL ? ts->cframe->current_frame : NULL; /* NULL while starting */
#endif
}

static inline PyObject *dg_code_of(dg_iframe *f)
{
#if PY_VERSION_HEX >= 0x030D0000
    if (f->owner == FRAME_OWNED_BY_CSTACK || f->f_executable == NULL ||
        !PyCode_Check(f->f_executable))
        return NULL;
    return f->f_executable;
#else
#if PY_VERSION_HEX >= 0x030C0000
    if (f->owner == FRAME_OWNED_BY_CSTACK)
        return NULL;
#endif
    if (f->f_code == NULL || !PyCode_Check(f->f_code))
        return NULL;
    return (PyObject *)f->f_code;
#endif
}

/* The first frame Python code would see, from `f` outwards (NULL if none). */
static inline dg_iframe *dg_visible(dg_iframe *f)
{
    while (f != NULL && (dg_code_of(f) == NULL || _PyFrame_IsIncomplete(f)))
        f = f->previous;
    return f;
}

static inline int dg_lasti(dg_iframe *f)
{
    return _PyInterpreterFrame_LASTI(f);
}

static inline dg_iframe *dg_top(PyThreadState *ts)
{
    return dg_visible(dg_current(ts));
}

static inline dg_mark dg_mark_of(PyThreadState *ts)
{
    dg_iframe *f = dg_current(ts);
    dg_mark m = {f, NULL, NULL};
    if (f != NULL) {
#if PY_VERSION_HEX >= 0x030D0000
        m.code = f->f_executable;
        m.instr = f->instr_ptr;
#else
        m.code = f->f_code;
        m.instr = f->prev_instr;
#endif
    }
    return m;
}

static inline int dg_walk(PyThreadState *ts, dg_frame *out, int max)
{
    int n = 0;
    for (dg_iframe *f = dg_top(ts); f != NULL && n < max; f = dg_visible(f->previous)) {
        out[n].code = dg_code_of(f);
        out[n].globals = f->f_globals;
        out[n].lasti = dg_lasti(f);
        n++;
    }
    return n;
}

/* The cache lines dg_mark_of() is about to read, asked for ahead (a prefetch never faults). */
static inline void dg_prefetch_mark(PyThreadState *ts)
{
    dg_iframe *f = dg_current(ts);
#if PY_VERSION_HEX >= 0x030D0000
    __builtin_prefetch(&f->f_executable);
    __builtin_prefetch(&f->instr_ptr);
#else
    __builtin_prefetch(&f->f_code);
    __builtin_prefetch(&f->prev_instr);
#endif
}

#else /* 3.10: frame objects linked by f_back */
typedef PyFrameObject dg_iframe;

static inline dg_iframe *dg_top(PyThreadState *ts)
{
    return ts->frame;
}

static inline int dg_lasti(dg_iframe *f)
{
    return f->f_lasti;
}

static inline dg_iframe *dg_current(PyThreadState *ts)
{
    return ts->frame;
}

static inline dg_mark dg_mark_of(PyThreadState *ts)
{
    PyFrameObject *f = ts->frame;
    dg_mark m = {f, NULL, NULL};
    if (f != NULL) {
        m.code = f->f_code;
        m.instr = (const void *)(intptr_t)f->f_lasti;
    }
    return m;
}

static inline void dg_prefetch_mark(PyThreadState *ts)
{
    PyFrameObject *f = ts->frame;
    __builtin_prefetch(&f->f_code);
    __builtin_prefetch(&f->f_lasti);
}

static inline PyObject *dg_code_of(dg_iframe *f)
{
    return f->f_code != NULL && PyCode_Check(f->f_code) ? (PyObject *)f->f_code : NULL;
}

static inline int dg_walk(PyThreadState *ts, dg_frame *out, int max)
{
    int n = 0;
    for (PyFrameObject *f = ts->frame; f != NULL && n < max; f = f->f_back) {
        if (dg_code_of(f) == NULL)
            continue;
        out[n].code = (PyObject *)f->f_code;
        out[n].globals = f->f_globals;
        out[n].lasti = f->f_lasti;
        n++;
    }
    return n;
}
#endif

#endif
