/* Unit tests for sbx-vsockd's split virtqueue (vsockd/virtq.c): chains,
 * index wraparound, indirect tables, notification suppression, and drivers
 * that break the rules (loops, wild addresses, bad lengths): the queue must
 * stop as broken, never crash or touch memory outside the guest's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vsockd/virtq.h"
#include "lib/log.h"
#include "tests/unit/vsockd_fake_guest.h"

struct fixture {
	struct vq_mem mem;
	struct virtq vq;
	struct fg_ring ring;
};

static int setup(void **state)
{
	static struct fixture f;

	fg_init_mem(&f.mem);
	virtq_init(&f.vq);
	assert_int_equal(fg_ring_init(&f.ring, &f.vq, &f.mem, 8, 0), 0);
	*state = &f;
	return 0;
}

static void test_empty_ring(void **state)
{
	struct fixture *f = *state;
	struct vq_chain c;

	assert_int_equal(virtq_pop(&f->vq, &c), 0);
	assert_false(virtq_has_avail(&f->vq));
}

static void test_chain_out_then_in(void **state)
{
	struct fixture *f = *state;
	char *a = fg_alloc(10), *b = fg_alloc(20), *w = fg_alloc(30);
	struct fg_desc d[] = {
		{ fg_gpa(a), 10, 0 }, { fg_gpa(b), 20, 0 }, { fg_gpa(w), 30, VRING_DESC_F_WRITE },
	};
	struct vq_chain c;
	uint32_t id, len;
	uint16_t head;
	char buf[30];

	memcpy(a, "0123456789", 10);
	memcpy(b, "abcdefghijklmnopqrst", 20);
	head = fg_add_chain(&f->ring, d, 3);
	assert_int_equal(virtq_pop(&f->vq, &c), 1);
	assert_int_equal(c.head, head);
	assert_int_equal(c.nout, 2);
	assert_int_equal(c.nin, 1);
	assert_int_equal(c.out_len, 30);
	assert_int_equal(c.in_len, 30);
	assert_int_equal(iov_to_buf(c.iov, c.nout, 8, buf, 5), 5);
	assert_memory_equal(buf, "89abc", 5);
	assert_int_equal(iov_from_buf(c.iov + c.nout, c.nin, 0, "xyz", 3), 3);
	assert_memory_equal(w, "xyz", 3);

	virtq_push(&f->vq, c.head, 3);
	/* nothing is visible before the flush */
	assert_int_equal(f->ring.used->idx, 0);
	virtq_flush(&f->vq);
	assert_int_equal(fg_get_used(&f->ring, &id, &len), 1);
	assert_int_equal(id, head);
	assert_int_equal(len, 3);
	assert_int_equal(virtq_pop(&f->vq, &c), 0);
}

/* avail and used indexes are free-running 16-bit counters (§2.7.6). */
static void test_index_wraparound(void **state)
{
	struct fixture *f = *state;
	struct vq_chain c;
	uint32_t id, len;

	assert_int_equal(fg_ring_init(&f->ring, &f->vq, &f->mem, 8, 65533), 0);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 5; i++) {
			struct fg_desc d = { fg_gpa(fg_alloc(64)), 64, VRING_DESC_F_WRITE };

			fg_add_chain(&f->ring, &d, 1);
		}
		for (int i = 0; i < 5; i++) {
			assert_int_equal(virtq_pop(&f->vq, &c), 1);
			virtq_push(&f->vq, c.head, (uint32_t)i);
		}
		assert_int_equal(virtq_pop(&f->vq, &c), 0);
		virtq_flush(&f->vq);
		for (int i = 0; i < 5; i++) {
			assert_int_equal(fg_get_used(&f->ring, &id, &len), 1);
			assert_int_equal(len, (uint32_t)i);
		}
	}
	assert_int_equal(f->vq.last_avail_idx, (uint16_t)(65533 + 15));
	assert_int_equal(f->ring.used->idx, (uint16_t)(65533 + 15));
}

static void test_unpop(void **state)
{
	struct fixture *f = *state;
	struct fg_desc d = { fg_gpa(fg_alloc(8)), 8, VRING_DESC_F_WRITE };
	struct vq_chain c;
	uint16_t h1 = fg_add_chain(&f->ring, &d, 1);

	fg_add_chain(&f->ring, &d, 1);
	assert_int_equal(virtq_pop(&f->vq, &c), 1);
	assert_int_equal(virtq_pop(&f->vq, &c), 1);
	virtq_unpop(&f->vq, 2);
	assert_int_equal(virtq_pop(&f->vq, &c), 1);
	assert_int_equal(c.head, h1);
}

static void test_indirect(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *t = fg_alloc(3 * sizeof(*t));
	char *hdr = fg_alloc(44), *data = fg_alloc(100), *in = fg_alloc(16);
	struct fg_desc d = { fg_gpa(t), 3 * sizeof(*t), VRING_DESC_F_INDIRECT };
	struct vq_chain c;

	t[0] = (struct vring_desc){ fg_gpa(hdr), 44, VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ fg_gpa(data), 100, VRING_DESC_F_NEXT, 2 };
	t[2] = (struct vring_desc){ fg_gpa(in), 16, VRING_DESC_F_WRITE, 0 };
	f->vq.indirect = true;
	fg_add_chain(&f->ring, &d, 1);
	assert_int_equal(virtq_pop(&f->vq, &c), 1);
	assert_int_equal(c.nout, 2);
	assert_int_equal(c.out_len, 144);
	assert_int_equal(c.nin, 1);
	assert_int_equal(c.in_len, 16);
	assert_false(f->vq.broken);
}

static void test_indirect_not_negotiated(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *t = fg_alloc(sizeof(*t));
	struct fg_desc d = { fg_gpa(t), sizeof(*t), VRING_DESC_F_INDIRECT };
	struct vq_chain c;

	t[0] = (struct vring_desc){ fg_gpa(fg_alloc(8)), 8, 0, 0 };
	fg_add_chain(&f->ring, &d, 1);
	assert_int_equal(virtq_pop(&f->vq, &c), -EIO);
	assert_true(f->vq.broken);
}

/* A chain that must break the queue, set up by the caller. */
static void expect_broken(struct fixture *f)
{
	struct vq_chain c;

	assert_int_equal(virtq_pop(&f->vq, &c), -EIO);
	assert_true(f->vq.broken);
	/* and it stays broken: nothing more is taken */
	assert_int_equal(virtq_pop(&f->vq, &c), -EIO);
	assert_false(virtq_has_avail(&f->vq));
}

static void test_bad_descriptor_loop(void **state)
{
	struct fixture *f = *state;
	struct fg_desc d[2] = { { fg_gpa(fg_alloc(8)), 8, 0 }, { fg_gpa(fg_alloc(8)), 8, 0 } };
	uint16_t head = fg_add_chain(&f->ring, d, 2);

	f->ring.desc[(head + 1) % 8].flags |= VRING_DESC_F_NEXT;
	f->ring.desc[(head + 1) % 8].next = head;
	expect_broken(f);
}

static void test_bad_self_loop_indirect(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *t = fg_alloc(2 * sizeof(*t));
	struct fg_desc d = { fg_gpa(t), 2 * sizeof(*t), VRING_DESC_F_INDIRECT };

	t[0] = (struct vring_desc){ fg_gpa(fg_alloc(8)), 8, VRING_DESC_F_NEXT, 1 };
	t[1] = (struct vring_desc){ fg_gpa(fg_alloc(8)), 8, VRING_DESC_F_NEXT, 0 };
	f->vq.indirect = true;
	fg_add_chain(&f->ring, &d, 1);
	expect_broken(f);
}

static void test_bad_address(void **state)
{
	struct fixture *f = *state;
	struct fg_desc d = { FG_GPA + FG_MEM_SIZE + 4096, 16, 0 };

	fg_add_chain(&f->ring, &d, 1);
	expect_broken(f);
}

static void test_bad_address_below(void **state)
{
	struct fixture *f = *state;
	struct fg_desc d = { 0, 16, VRING_DESC_F_WRITE };

	fg_add_chain(&f->ring, &d, 1);
	expect_broken(f);
}

static void test_bad_length_past_end(void **state)
{
	struct fixture *f = *state;
	struct fg_desc d = { FG_GPA + FG_MEM_SIZE - 8, 16, 0 };

	fg_add_chain(&f->ring, &d, 1);
	expect_broken(f);
}

static void test_bad_length_wraps(void **state)
{
	struct fixture *f = *state;
	struct fg_desc d = { 0xfffffffffffffff0ull, 0xffffffff, 0 };

	fg_add_chain(&f->ring, &d, 1);
	expect_broken(f);
}

static void test_bad_head_index(void **state)
{
	struct fixture *f = *state;

	f->ring.avail->ring[0] = 8; /* == num */
	f->ring.avail->idx = 1;
	expect_broken(f);
}

static void test_bad_next_index(void **state)
{
	struct fixture *f = *state;
	struct fg_desc d = { fg_gpa(fg_alloc(8)), 8, 0 };
	uint16_t head = fg_add_chain(&f->ring, &d, 1);

	f->ring.desc[head].flags |= VRING_DESC_F_NEXT;
	f->ring.desc[head].next = 1000;
	expect_broken(f);
}

static void test_bad_readable_after_writable(void **state)
{
	struct fixture *f = *state;
	struct fg_desc d[2] = {
		{ fg_gpa(fg_alloc(8)), 8, VRING_DESC_F_WRITE }, { fg_gpa(fg_alloc(8)), 8, 0 },
	};

	fg_add_chain(&f->ring, d, 2);
	expect_broken(f);
}

static void test_bad_avail_jump(void **state)
{
	struct fixture *f = *state;

	f->ring.avail->idx = 9; /* 9 chains in a ring of 8 */
	expect_broken(f);
}

static void test_bad_indirect_with_next(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *t = fg_alloc(sizeof(*t));
	struct fg_desc d[2] = {
		{ fg_gpa(t), sizeof(*t), VRING_DESC_F_INDIRECT }, { fg_gpa(fg_alloc(8)), 8, 0 },
	};

	t[0] = (struct vring_desc){ fg_gpa(fg_alloc(8)), 8, 0, 0 };
	f->vq.indirect = true;
	fg_add_chain(&f->ring, d, 2);
	expect_broken(f);
}

static void test_bad_indirect_nested(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *t = fg_alloc(sizeof(*t));
	struct fg_desc d = { fg_gpa(t), sizeof(*t), VRING_DESC_F_INDIRECT };

	t[0] = (struct vring_desc){ fg_gpa(t), sizeof(*t), VRING_DESC_F_INDIRECT, 0 };
	f->vq.indirect = true;
	fg_add_chain(&f->ring, &d, 1);
	expect_broken(f);
}

static void test_bad_indirect_length(void **state)
{
	struct fixture *f = *state;
	struct fg_desc d = { fg_gpa(fg_alloc(64)), 17, VRING_DESC_F_INDIRECT };

	f->vq.indirect = true;
	fg_add_chain(&f->ring, &d, 1);
	expect_broken(f);
}

static void test_bad_too_many_iovecs(void **state)
{
	struct fixture *f = *state;
	struct vring_desc *t = fg_alloc((VQ_IOV_MAX + 1) * sizeof(*t));
	struct fg_desc d = { fg_gpa(t), (VQ_IOV_MAX + 1) * sizeof(*t), VRING_DESC_F_INDIRECT };

	for (unsigned i = 0; i <= VQ_IOV_MAX; i++)
		t[i] = (struct vring_desc){ fg_gpa(fg_alloc(4)), 4,
					    i < VQ_IOV_MAX ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1) };
	f->vq.indirect = true;
	fg_add_chain(&f->ring, &d, 1);
	expect_broken(f);
}

/* A buffer that crosses from one region into the next becomes two iovecs. */
static void test_region_split(void **state)
{
	struct fixture *f = *state;
	struct fg_desc d = { FG_GPA + (2u << 20) - 10, 20, 0 };
	struct vq_chain c;

	f->mem.nregions = 2;
	f->mem.region[1] = f->mem.region[0];
	f->mem.region[0].size = 2u << 20;
	f->mem.region[1].gpa = FG_GPA + (2u << 20);
	f->mem.region[1].host = fg_mem + (2u << 20);
	f->mem.region[1].size = FG_MEM_SIZE - (2u << 20);
	f->mem.region[1].uva = FG_UVA + (2u << 20);
	fg_add_chain(&f->ring, &d, 1);
	assert_int_equal(virtq_pop(&f->vq, &c), 1);
	assert_int_equal(c.nout, 2);
	assert_int_equal(c.iov[0].iov_len, 10);
	assert_int_equal(c.iov[1].iov_len, 10);
	assert_ptr_equal(c.iov[1].iov_base, fg_mem + (2u << 20));
	assert_non_null(vq_mem_uva(&f->mem, FG_UVA + 100, 16));
	assert_null(vq_mem_uva(&f->mem, FG_UVA - 1, 16));
	f->mem = (struct vq_mem){ 0 };
	fg_init_mem(&f->mem);
}

static void test_setup_rejects_bad_size(void **state)
{
	struct fixture *f = *state;
	struct virtq vq;

	virtq_init(&vq);
	assert_int_equal(virtq_setup(&vq, &f->mem, 7, f->ring.desc, f->ring.avail, f->ring.used, 0),
			 -EINVAL);
	assert_int_equal(virtq_setup(&vq, &f->mem, 65536, f->ring.desc, f->ring.avail,
				     f->ring.used, 0), -EINVAL);
	assert_int_equal(virtq_setup(&vq, &f->mem, 8, (char *)f->ring.desc + 1, f->ring.avail,
				     f->ring.used, 0), -EINVAL);
}

static uint64_t drain_eventfd(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) < 0)
		return 0;
	return v;
}

/* Without EVENT_IDX the driver can only say "no interrupts at all". */
static void test_signal_no_interrupt_flag(void **state)
{
	struct fixture *f = *state;
	struct fg_desc d = { fg_gpa(fg_alloc(8)), 8, VRING_DESC_F_WRITE };
	struct vq_chain c;

	f->vq.call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	fg_add_chain(&f->ring, &d, 1);
	fg_add_chain(&f->ring, &d, 1);
	assert_int_equal(virtq_pop(&f->vq, &c), 1);
	virtq_push(&f->vq, c.head, 0);
	assert_true(virtq_flush(&f->vq));
	assert_int_equal(drain_eventfd(f->vq.call_fd), 1);
	f->ring.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	assert_int_equal(virtq_pop(&f->vq, &c), 1);
	virtq_push(&f->vq, c.head, 0);
	assert_false(virtq_flush(&f->vq));
	assert_int_equal(drain_eventfd(f->vq.call_fd), 0);
	/* nothing new: no flush, no signal */
	assert_false(virtq_flush(&f->vq));
	close(f->vq.call_fd);
	f->vq.call_fd = -1;
}

/* With EVENT_IDX: signal only when the used index passes used_event. */
static void test_signal_event_idx(void **state)
{
	struct fixture *f = *state;
	struct fg_desc d = { fg_gpa(fg_alloc(8)), 8, VRING_DESC_F_WRITE };
	uint16_t *used_event = &f->ring.avail->ring[f->ring.num];
	struct vq_chain c;
	int signalled = 0;

	f->vq.event_idx = true;
	f->vq.call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	*used_event = 2; /* wake me when entry 2 is used (idx goes 2 -> 3) */
	for (int i = 0; i < 5; i++) {
		fg_add_chain(&f->ring, &d, 1);
		assert_int_equal(virtq_pop(&f->vq, &c), 1);
		virtq_push(&f->vq, c.head, 0);
		if (virtq_flush(&f->vq)) {
			signalled++;
			assert_int_equal(f->ring.used->idx, 3);
		}
	}
	assert_int_equal(signalled, 1);
	/* a batch that jumps over used_event still signals once */
	*used_event = 6;
	for (int i = 0; i < 4; i++) {
		fg_add_chain(&f->ring, &d, 1);
		assert_int_equal(virtq_pop(&f->vq, &c), 1);
		virtq_push(&f->vq, c.head, 0);
	}
	assert_true(virtq_flush(&f->vq));
	close(f->vq.call_fd);
	f->vq.call_fd = -1;
}

static void test_want_kick(void **state)
{
	struct fixture *f = *state;
	struct fg_desc d = { fg_gpa(fg_alloc(8)), 8, VRING_DESC_F_WRITE };
	uint16_t *avail_event = (uint16_t *)&f->ring.used->ring[f->ring.num];
	struct vq_chain c;

	f->vq.event_idx = true;
	fg_add_chain(&f->ring, &d, 1);
	assert_int_equal(virtq_pop(&f->vq, &c), 1);
	assert_false(virtq_want_kick(&f->vq));
	assert_int_equal(*avail_event, 1);
	fg_add_chain(&f->ring, &d, 1);
	/* a chain added meanwhile: the caller must look again */
	assert_true(virtq_want_kick(&f->vq));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_empty_ring, setup),
		cmocka_unit_test_setup(test_chain_out_then_in, setup),
		cmocka_unit_test_setup(test_index_wraparound, setup),
		cmocka_unit_test_setup(test_unpop, setup),
		cmocka_unit_test_setup(test_indirect, setup),
		cmocka_unit_test_setup(test_indirect_not_negotiated, setup),
		cmocka_unit_test_setup(test_bad_descriptor_loop, setup),
		cmocka_unit_test_setup(test_bad_self_loop_indirect, setup),
		cmocka_unit_test_setup(test_bad_address, setup),
		cmocka_unit_test_setup(test_bad_address_below, setup),
		cmocka_unit_test_setup(test_bad_length_past_end, setup),
		cmocka_unit_test_setup(test_bad_length_wraps, setup),
		cmocka_unit_test_setup(test_bad_head_index, setup),
		cmocka_unit_test_setup(test_bad_next_index, setup),
		cmocka_unit_test_setup(test_bad_readable_after_writable, setup),
		cmocka_unit_test_setup(test_bad_avail_jump, setup),
		cmocka_unit_test_setup(test_bad_indirect_with_next, setup),
		cmocka_unit_test_setup(test_bad_indirect_nested, setup),
		cmocka_unit_test_setup(test_bad_indirect_length, setup),
		cmocka_unit_test_setup(test_bad_too_many_iovecs, setup),
		cmocka_unit_test_setup(test_region_split, setup),
		cmocka_unit_test_setup(test_setup_rejects_bad_size, setup),
		cmocka_unit_test_setup(test_signal_no_interrupt_flag, setup),
		cmocka_unit_test_setup(test_signal_event_idx, setup),
		cmocka_unit_test_setup(test_want_kick, setup),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
