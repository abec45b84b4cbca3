/* A body's digest: XXH3-128 inline, or BLAKE2b on a second thread (see
 * lib/hasher.h). For BLAKE2b, the caller copies
 * chunks into the ring (a memcpy runs at ten times BLAKE2b's speed), the
 * thread hashes them in order. A full ring makes the caller wait for the
 * thread, which only ever waits for the caller: the wait is bounded by
 * hashing 1 MiB, never by a peer, so an agent's loop stalls no longer than
 * it did when it hashed the chunk itself. */
#include "lib/hasher.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"

/* Header-only: sbx-init is static (musl) and links no libxxhash. */
#define XXH_INLINE_ALL
#include <xxhash.h>

_Static_assert(sizeof(XXH3_state_t) <= HASHER_XXH3_STATE, "HASHER_XXH3_STATE is too small");
_Static_assert(_Alignof(XXH3_state_t) <= 64, "XXH3_state_t wants more than 64-byte alignment");

#define XXH3_LEN 16

#define RING (1024 * 1024)       /* a power of two */
#define SPAN (128 * 1024)        /* hashed per turn, then the room is given back */
/* Bodies up to this size are hashed inline: a thread costs more than it
 * saves on small files, and most files are small. */
#define INLINE_MAX (512 * 1024)
/* Hasher threads at once in this process: no more than the CPUs beside
 * the caller's, and never many (each holds a ring). Bodies beyond that
 * are hashed inline, as before there were threads. */
#define HASHERS_MAX 4

static atomic_int hashers;

/* sodium_init() is not called on purpose: generichash needs nothing from
 * it but the choice of implementation, and on the CPUs we measured the
 * portable one it starts with is the fastest (1.1 GB/s against 0.7 GB/s
 * for the AVX2 one it would pick) and keeps 140 KiB of other primitives
 * out of sbx-init. */
void hasher_init(struct hasher *hs, size_t digest_len)
{
	memset(hs, 0, sizeof(*hs));
	hs->digest_len = digest_len;
	if (digest_len == XXH3_LEN) {
		hs->no_thread = true; /* memory speed: a thread costs more than it saves */
		XXH3_128bits_reset((XXH3_state_t *)hs->h.x3);
		return;
	}
	crypto_generichash_init(&hs->h.b2, NULL, 0, digest_len);
}

static void *hasher_main(void *arg)
{
	struct hasher *hs = arg;

	pthread_mutex_lock(&hs->mu);
	for (;;) {
		size_t pos, n;

		while (hs->in == hs->out && !hs->done && !hs->stop)
			pthread_cond_wait(&hs->more, &hs->mu);
		if (hs->stop || hs->in == hs->out)
			break;
		pos = (size_t)(hs->out & (RING - 1));
		n = (size_t)MIN(hs->in - hs->out, (uint64_t)MIN(RING - pos, SPAN));
		pthread_mutex_unlock(&hs->mu);
		/* The span [out, out + n) is the thread's until out moves. */
		crypto_generichash_update(&hs->h.b2, hs->ring + pos, n);
		pthread_mutex_lock(&hs->mu);
		hs->out += n;
		pthread_cond_signal(&hs->room);
	}
	pthread_mutex_unlock(&hs->mu);
	return NULL;
}

/* Takes one of the thread slots: as many as there are CPUs beside the
 * caller's (one CPU: a second thread would only take turns with the
 * first), at most HASHERS_MAX. */
static bool take_slot(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int max = cpus - 1 < HASHERS_MAX ? (int)cpus - 1 : HASHERS_MAX;

	if (atomic_fetch_add(&hashers, 1) < max)
		return true;
	atomic_fetch_sub(&hashers, 1);
	return false;
}

/* Starts the thread, with every signal blocked in it (the process's
 * signals stay the caller's business). False: go on inline. */
static bool hasher_start(struct hasher *hs)
{
	sigset_t all, old;
	int r;

	hs->no_thread = true; /* one try per body */
	if (!take_slot())
		return false;
	if (!(hs->ring = malloc(RING))) {
		atomic_fetch_sub(&hashers, 1);
		return false;
	}
	pthread_mutex_init(&hs->mu, NULL);
	pthread_cond_init(&hs->more, NULL);
	pthread_cond_init(&hs->room, NULL);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&hs->thread, NULL, hasher_main, hs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		pthread_cond_destroy(&hs->room);
		pthread_cond_destroy(&hs->more);
		pthread_mutex_destroy(&hs->mu);
		free(hs->ring);
		hs->ring = NULL;
		atomic_fetch_sub(&hashers, 1);
		return false;
	}
	hs->threaded = true;
	return true;
}

/* Whether this chunk goes to the thread (starting it once the body has
 * outgrown INLINE_MAX). */
static bool use_thread(struct hasher *hs, size_t n)
{
	if (hs->threaded)
		return true;
	if (hs->no_thread || hs->inline_bytes + n <= INLINE_MAX)
		return false;
	return hasher_start(hs);
}

uint8_t *hasher_reserve(struct hasher *hs, size_t want, size_t *got)
{
	size_t pos;

	if (!use_thread(hs, want))
		return NULL;
	pthread_mutex_lock(&hs->mu);
	while (hs->in - hs->out == RING)
		pthread_cond_wait(&hs->room, &hs->mu);
	pos = (size_t)(hs->in & (RING - 1));
	*got = (size_t)MIN((uint64_t)want, MIN(RING - (hs->in - hs->out), (uint64_t)(RING - pos)));
	pthread_mutex_unlock(&hs->mu);
	return hs->ring + pos;
}

void hasher_commit(struct hasher *hs, size_t n)
{
	if (!n)
		return;
	pthread_mutex_lock(&hs->mu);
	hs->in += n;
	pthread_cond_signal(&hs->more);
	pthread_mutex_unlock(&hs->mu);
}

void hasher_put(struct hasher *hs, const void *p, size_t n)
{
	const uint8_t *src = p;

	if (hs->digest_len == XXH3_LEN) {
		XXH3_128bits_update((XXH3_state_t *)hs->h.x3, src, n);
		hs->inline_bytes += n;
		return;
	}
	if (!use_thread(hs, n)) {
		crypto_generichash_update(&hs->h.b2, src, n);
		hs->inline_bytes += n;
		return;
	}
	while (n) {
		size_t got;
		uint8_t *dst = hasher_reserve(hs, n, &got);

		memcpy(dst, src, got);
		hasher_commit(hs, got);
		src += got;
		n -= got;
	}
}

/* Ends the thread: with stop, what is still in the ring is dropped. */
static void hasher_join(struct hasher *hs, bool stop)
{
	if (!hs->threaded)
		return;
	pthread_mutex_lock(&hs->mu);
	hs->done = true;
	hs->stop = stop;
	pthread_cond_signal(&hs->more);
	pthread_mutex_unlock(&hs->mu);
	pthread_join(hs->thread, NULL);
	pthread_cond_destroy(&hs->room);
	pthread_cond_destroy(&hs->more);
	pthread_mutex_destroy(&hs->mu);
	free(hs->ring);
	hs->ring = NULL;
	hs->threaded = false;
	atomic_fetch_sub(&hashers, 1);
}

void hasher_final(struct hasher *hs, uint8_t *out)
{
	hasher_join(hs, false);
	hs->no_thread = true;
	if (hs->digest_len == XXH3_LEN) {
		XXH128_canonical_t c;

		XXH128_canonicalFromHash(&c, XXH3_128bits_digest((XXH3_state_t *)hs->h.x3));
		memcpy(out, c.digest, XXH3_LEN);
		return;
	}
	crypto_generichash_final(&hs->h.b2, out, hs->digest_len);
}

void hasher_close(struct hasher *hs)
{
	hasher_join(hs, true);
	hs->no_thread = true;
}
