/* Unit tests for QEMU's command line (launcher/qemu.c): the machine, the
 * memory and CPUs asked for, the console file, and the vsock device of
 * each mode (the host kernel's vhost-vsock, sbx-vsockd's vhost-user),
 * the balloon that reports free pages, the -M pc machine of a pausable
 * sandbox. */
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
			    "console=ttyS0 quiet panic=-1 cryptomgr.notests "
			    "initcall_blacklist=tracer_init_tracefs,crypto_kdf108_init,pci_arch_init tsc_early_khz=2000000");
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
	assert_string_equal(arg_of(a.argv, "-cpu"), "max,erms=off,fsrm=off");
	assert_string_equal(arg_of(a.argv, "-chardev"), "socket,id=vu,path=/s/vhost.sock");
	assert_string_equal(arg_of(a.argv, "-device"), "vhost-user-vsock-device,chardev=vu");
	assert_string_equal(arg_of(a.argv, "-append"),
			    "console=ttyS0 quiet panic=-1 tsc=reliable cryptomgr.notests "
			    "initcall_blacklist=tracer_init_tracefs,crypto_kdf108_init,pci_arch_init");
}

/* The balloon is there for its free-page reporting, whatever the vsock. */
static void test_balloon(void **state)
{
	struct qemu_spec q = base;
	struct qemu_argv a;
	int found = 0;

	q.vhost_user = "/s/vhost.sock";
	qemu_argv_build(&q, &a);
	for (int i = 0; a.argv[i]; i++)
		if (strcmp(a.argv[i], "-device") == 0 && a.argv[i + 1] &&
		    strcmp(a.argv[i + 1], "virtio-balloon-device,free-page-reporting=on") == 0)
			found++;
	assert_int_equal(found, 1);
}

/* A pausable sandbox: -M pc, every device on PCI at a fixed slot (the
 * restored machine must match the saved one), the vsock device named for
 * device_del, a QMP socket, and PCI left to the kernel, its interrupts
 * routed without ACPI's _PRT (acpi=noirq: a hotplug's cost), and no MSI
 * tried (pci=nomsi: without the MADT there is no local APIC). */
static void test_pausable(void **state)
{
	static const struct qemu_drive d[1] = {
		{ "file=/d/x.ext4,if=none,id=rw,format=raw", "virtio-blk-device,drive=rw,serial=sbx-rw" },
	};
	struct qemu_spec q = base;
	struct qemu_argv a;
	const char *want[] = { "vhost-user-vsock-pci,chardev=vu,id=vsock,addr=0x2",
			       "virtio-balloon-pci,free-page-reporting=on,addr=0x3",
			       "virtio-blk-pci,drive=rw,serial=sbx-rw,addr=0x4" };
	int k = 0;

	q.kvm = false;
	q.vhost_user = "/s/vhost.sock";
	q.pausable = true;
	q.qmp = "/s/qmp.sock";
	q.drives = d;
	q.ndrives = 1;
	qemu_argv_build(&q, &a);
	assert_string_equal(arg_of(a.argv, "-M"), "pc,memory-backend=mem");
	for (int i = 0; a.argv[i]; i++)
		if (strcmp(a.argv[i], "-device") == 0) {
			assert_true(k < 3);
			assert_string_equal(a.argv[i + 1], want[k]);
			k++;
		}
	assert_int_equal(k, 3);
	assert_string_equal(arg_of(a.argv, "-qmp"), "unix:/s/qmp.sock,server=on,wait=off");
	assert_string_equal(arg_of(a.argv, "-append"),
			    "console=ttyS0 quiet panic=-1 tsc=reliable cryptomgr.notests "
			    "initcall_blacklist=tracer_init_tracefs,crypto_kdf108_init acpi=noirq pci=nomsi tsc_early_khz=2000000");
}

/* An image's disks follow as -drive/-device pairs, in order. */
static void test_drives(void **state)
{
	static const struct qemu_drive d[2] = {
		{ "file=/i/base.erofs,if=none,id=ro0,format=raw,readonly=on",
		  "virtio-blk-device,drive=ro0,serial=sbx-base" },
		{ "file=/d/x.ext4,if=none,id=rw,format=raw", "virtio-blk-device,drive=rw,serial=sbx-rw" },
	};
	struct qemu_spec q = base;
	struct qemu_argv a;
	int n = 0, at = -1;

	q.drives = d;
	q.ndrives = 2;
	qemu_argv_build(&q, &a);
	for (int i = 0; a.argv[i]; i++, n++)
		if (at < 0 && strcmp(a.argv[i], "-drive") == 0)
			at = i;
	assert_true(at > 0);
	assert_string_equal(a.argv[at + 1], d[0].drive);
	assert_string_equal(a.argv[at + 2], "-device");
	assert_string_equal(a.argv[at + 3], d[0].device);
	assert_string_equal(a.argv[at + 4], "-drive");
	assert_string_equal(a.argv[at + 5], d[1].drive);
	assert_string_equal(a.argv[at + 7], d[1].device);
	assert_null(a.argv[at + 8]);
	assert_true(n < QEMU_ARGV_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vhost_vsock),
		cmocka_unit_test(test_vhost_user),
		cmocka_unit_test(test_balloon),
		cmocka_unit_test(test_pausable),
		cmocka_unit_test(test_drives),
	};

	return cmocka_run_group_tests_name("qemu", tests, NULL, NULL);
}
