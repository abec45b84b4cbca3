/* A template's spares: QEMUs started ahead for its next clones, each
 * with its RAM filled in and waiting for its stream, so that a clone's
 * create skips QEMU's start and the copy of the template's memory
 * (docs/TEMPLATES.md, "Spares"). `sbx template create --spares N` keeps N
 * of them; each holds the memory of a clone (its RAM, ~86 MB for an idle
 * minimal template, and its QEMU's own). */
#ifndef SBX_LAUNCHER_SPARE_H
#define SBX_LAUNCHER_SPARE_H

/* Most spares a template keeps. */
#define SPARES_MAX 8

/* Makes template NAME's spares up to its count in a process of their own
 * (`sbx template _fill NAME`, which runs spares_fill_now), detached:
 * nobody waits for it and it holds no descriptor of the caller. */
void spares_fill(const char *name);
/* The filler itself: one per template at a time (the lock below); 0, or
 * 1 when it could not make them. */
int spares_fill_now(const char *name);

/* The lock of template NAME's fillers, taken: template rm holds it while
 * it stops the spares (sandbox_spares) and removes the template, so that
 * no filler makes one of a template being removed. The fd to close, or
 * -1. */
int spares_lock(const char *name);

#endif
