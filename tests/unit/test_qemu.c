/* Unit tests for QEMU's command line (launcher/qemu.c): the machine, the
 * memory and CPUs asked for, the console file, and the vsock device of
 * each mode (the host kernel's vhost-vsock, sbx-vsockd's vhost-user). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "launcher/qemu.h"

/* The argument after opt, or NULL when opt is absent. */
static const char *arg_of(char *const *argv, const char *opt)
{
	for (int i = 0; argv[i]; i++)
		if (strcmp(argv[i], opt) == 0)
			return argv[i + 1];
	return NULL;
}

static const struct qemu_spec base = {
	.name = "sbx-test", .kvm = true, .memory_mib = 1024, .cpus = 2,
	.kernel = "/k/vmlinuz", .initrd = "/s/initrd.img", .console = "/s/console.log",
	.tsc_khz = 2000000,
};

static void test_vhost_vsock(void **state)
{
	struct qemu_spec q = base;
	struct qemu_argv a;

	q.cid = 42;
	qemu_argv_build(&q, &a);
	assert_string_equal(a.argv[0], "qemu-system-x86_64");
	assert_string_equal(arg_of(a.argv, "-name"), "sbx-test");
	assert_string_equal(arg_of(a.argv, "-M"), "microvm,memory-backend=mem");
	assert_string_equal(arg_of(a.argv, "-accel"), "kvm");
	assert_string_equal(arg_of(a.argv, "-cpu"), "host");
	assert_string_equal(arg_of(a.argv, "-m"), "1024M");
	assert_string_equal(arg_of(a.argv, "-smp"), "2");
	assert_string_equal(arg_of(a.argv, "-object"),
			    "memory-backend-memfd,id=mem,size=1024M,share=on");
	assert_string_equal(arg_of(a.argv, "-serial"), "file:/s/console.log");
	assert_string_equal(arg_of(a.argv, "-device"), "vhost-vsock-device,guest-cid=42");
	assert_null(arg_of(a.argv, "-chardev"));
	assert_string_equal(arg_of(a.argv, "-kernel"), "/k/vmlinuz");
	assert_string_equal(arg_of(a.argv, "-initrd"), "/s/initrd.img");
	assert_string_equal(arg_of(a.argv, "-append"),
			    "console=ttyS0 quiet panic=-1 initcall_blacklist=pci_arch_init "
			    "tsc_early_khz=2000000");
}

static void test_vhost_user(void **state)
{
	struct qemu_spec q = base;
	struct qemu_argv a;

	q.kvm = false;
	q.tsc_khz = 0;
	q.vhost_user = "/s/vhost.sock";
	qemu_argv_build(&q, &a);
	assert_string_equal(arg_of(a.argv, "-accel"), "tcg");
	assert_string_equal(arg_of(a.argv, "-cpu"), "max");
	assert_string_equal(arg_of(a.argv, "-chardev"), "socket,id=vu,path=/s/vhost.sock");
	assert_string_equal(arg_of(a.argv, "-device"), "vhost-user-vsock-device,chardev=vu");
	assert_string_equal(arg_of(a.argv, "-append"), "console=ttyS0 quiet panic=-1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vhost_vsock),
		cmocka_unit_test(test_vhost_user),
	};

	return cmocka_run_group_tests_name("qemu", tests, NULL, NULL);
}
