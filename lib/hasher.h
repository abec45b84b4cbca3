/* The digest of a file body (docs/protocol/files.md, "Integrity"):
 * XXH3-128 (xxHash), or BLAKE2b-256 for a peer of protocol version 1.
 *
 * XXH3 runs at memory speed and is hashed inline, on the caller's thread:
 * copying the bytes to another thread would cost as much as hashing them.
 * BLAKE2b runs at about 1 GB/s a core, which on the thread that moves the
 * bytes was most of a transfer's cost: a big body's BLAKE2b is made on a
 * second thread when the machine has a second CPU (lib/hasher.c). The
 * mover copies each chunk into a bounded ring (1 MiB) that a hasher thread
 * drains; the digest is joined at the end. Either digest is one stream
 * over the bytes in order.
 *
 * One producer (the thread that calls put/reserve/commit/final/close).
 * For BLAKE2b: small bodies, one CPU, as many bodies hashing at once as
 * there are other CPUs (at most 4), or a thread that cannot be made:
 * hashed inline, the same digest. No thread outlives hasher_final or
 * hasher_close. */
#ifndef SBX_HASHER_H
#define SBX_HASHER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

/* Room for xxHash's XXH3_state_t, kept opaque here so that only
 * lib/hasher.c includes xxhash.h (checked there). */
#define HASHER_XXH3_STATE 640

struct hasher {
	union {                     /* first: both want 64-byte alignment */
		crypto_generichash_state b2;
		_Alignas(64) unsigned char x3[HASHER_XXH3_STATE];
	} h;
	size_t digest_len;          /* FS_DIGEST_XXH3_LEN: XXH3-128; else BLAKE2b */
	uint64_t inline_bytes;      /* hashed on the caller's thread so far */
	bool threaded;              /* the thread runs (or ran and is not joined) */
	bool no_thread;             /* do not try again: inline to the end */
	/* The ring, between the caller and the thread; in and out count bytes
	 * ever put and hashed, under mu. */
	pthread_mutex_t mu;
	pthread_cond_t more, room;
	uint8_t *ring;
	uint64_t in, out;
	bool done, stop;
	pthread_t thread;
};

/* A new digest of digest_len bytes: 16 is XXH3-128 (seed 0, the
 * canonical big-endian form), anything else BLAKE2b of that length (no
 * thread yet). */
void hasher_init(struct hasher *hs, size_t digest_len);
/* Hashes p[0..n) after what came before (copied into the ring when
 * threaded: p may be reused on return). */
void hasher_put(struct hasher *hs, const void *p, size_t n);
/* For bytes read straight into the ring: room for up to want bytes,
 * *got of them (at least 1), to be filled and then passed to
 * hasher_commit. NULL when inline: the caller hashes its own buffer
 * with hasher_put. */
uint8_t *hasher_reserve(struct hasher *hs, size_t want, size_t *got);
void hasher_commit(struct hasher *hs, size_t n);
/* Waits for the thread, writes the digest and releases everything. */
void hasher_final(struct hasher *hs, uint8_t *out);
/* Drops the digest: stops and joins the thread, releases everything.
 * Safe after hasher_final and more than once. */
void hasher_close(struct hasher *hs);

#endif
