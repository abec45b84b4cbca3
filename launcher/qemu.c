/* QEMU's command line for a sandbox: see qemu.h. The state directory
 * appears in it (-initrd): that is how the launcher recognises
 * its QEMU later, since pids get reused. */
#include "launcher/qemu.h"

#include <stdio.h>
#include <string.h>

#include "lib/util.h"

/* A virtio-mmio device name ("virtio-blk-device,...") as its PCI twin at
 * a fixed slot: the restored machine must have every device where the
 * saved one had it. */
static void pci_device(char *out, size_t n, const char *mmio, unsigned slot)
{
	const char *comma = strchr(mmio, ',');
	size_t head = comma ? (size_t)(comma - mmio) : strlen(mmio);

	if (head > 7 && !strncmp(mmio + head - 7, "-device", 7))
		head -= 7;
	snprintf(out, n, "%.*s-pci%s,addr=0x%x", (int)head, mmio, comma ? comma : "", slot);
}

void qemu_argv_build(const struct qemu_spec *q, struct qemu_argv *a)
{
	char **v = a->argv;
	int n = 0;

	snprintf(a->mem, sizeof(a->mem), "%lluM", (unsigned long long)q->memory_mib);
	snprintf(a->memobj, sizeof(a->memobj), "memory-backend-memfd,id=mem,size=%lluM,share=on",
		 (unsigned long long)q->memory_mib);
	snprintf(a->machine, sizeof(a->machine), "%s,memory-backend=mem",
		 q->pausable ? "pc" : "microvm");
	/* microvm has no PCI: the kernel skips pci_arch_init, which would
	 * only print "PCI: Fatal: No config space access function found".
	 * No tracefs: 6.1 builds a dentry and an inode for each file of
	 * each trace event at boot, ~6 MiB of slab for a tracing interface
	 * sbx does not use (docs/MEMORY.md says what workloads lose).
	 * -M pc (pausable): acpi=noirq, PCI interrupts routed through the
	 * BIOS's $PIR table: with ACPI, enabling each PCI device runs the
	 * _PRT method of QEMU's tables (a loop over 128 entries), ~110 ms
	 * under TCG for the vsock device hotplugged into each restored
	 * sandbox (launcher/pause.c, launcher/template.c). Without the MADT
	 * the guest has no local APIC (Debian's kernel has no MP table
	 * code): the 8259 takes every interrupt and there is no MSI, so
	 * pci=nomsi, or each virtio device's probe tries MSI-X and fails
	 * first (a WARN at boot, ~5 ms of each clone's hotplug).
	 * No crypto self-tests at boot (cryptomgr.notests; FIPS mode would
	 * ignore it): Debian's kernel tests every algorithm it registers,
	 * and crypto_kdf108_init is nothing but such a test, which also
	 * instantiates hmac(sha256) through request_module and so waits for
	 * the initramfs: ~190 ms less of QEMU's CPU time per boot under TCG
	 * (with tsc=reliable; medians of 5 boots each, alternated).
	 * tsc=reliable under TCG: its TSC follows the host's clock, while
	 * jiffies lag when the host is busy, so the clocksource watchdog
	 * would swap the TSC for 4 ms jiffies (coarse clocks for workloads
	 * and the agent's timings). Not under KVM, where the watchdog guards
	 * against hosts whose TSCs are not in step. */
	snprintf(a->append, sizeof(a->append),
		 "console=ttyS0 quiet panic=-1%s cryptomgr.notests "
		 "initcall_blacklist=tracer_init_tracefs,crypto_kdf108_init%s%s%.0lu",
		 q->kvm ? "" : " tsc=reliable",
		 q->pausable ? " acpi=noirq pci=nomsi" : ",pci_arch_init",
		 q->tsc_khz ? " tsc_early_khz=" : "", q->tsc_khz);
	snprintf(a->serial, sizeof(a->serial), "file:%s", q->console);
	snprintf(a->cpus, sizeof(a->cpus), "%u", q->cpus);
	str_copy(a->name, sizeof(a->name), q->name);
	str_copy(a->kernel, sizeof(a->kernel), q->kernel);
	str_copy(a->initrd, sizeof(a->initrd), q->initrd);
	if (q->vhost_user) {
		snprintf(a->chardev, sizeof(a->chardev), "socket,id=" QEMU_VHOST_USER_CHARDEV ",path=%s",
			 q->vhost_user);
		if (q->pausable)
			snprintf(a->device, sizeof(a->device), "vhost-user-vsock-pci,chardev="
				 QEMU_VHOST_USER_CHARDEV ",id=" QEMU_VSOCK_ID ",addr=0x%x",
				 QEMU_VSOCK_SLOT);
		else
			snprintf(a->device, sizeof(a->device), "vhost-user-vsock-device,chardev="
				 QEMU_VHOST_USER_CHARDEV);
	} else {
		snprintf(a->device, sizeof(a->device), "vhost-vsock-%s,guest-cid=%u",
			 q->pausable ? "pci" : "device", q->cid);
	}
	/* Free-page reporting: pages the guest frees go back to the host
	 * (QEMU punches them out of the memfd), with no balloon inflation. */
	if (q->pausable)
		snprintf(a->balloon, sizeof(a->balloon),
			 "virtio-balloon-pci,free-page-reporting=on,addr=0x%x", QEMU_VSOCK_SLOT + 1);
	else
		snprintf(a->balloon, sizeof(a->balloon), "virtio-balloon-device,free-page-reporting=on");

	v[n++] = "qemu-system-x86_64";
	v[n++] = "-name";
	v[n++] = a->name;
	v[n++] = "-M";
	v[n++] = a->machine;
	v[n++] = "-accel";
	v[n++] = q->kvm ? "kvm" : "tcg";
	/* -cpu max: with the default CPU the guest RNG stalls ~1 s. Without
	 * ERMS/FSRM: the guest kernel then copies (copy_to/from_user, memcpy,
	 * clear_user) with rep movsq or unrolled moves instead of rep movsb,
	 * which TCG runs one byte per iteration; measured 2026-12-06, a raw
	 * vsock stream from /dev/zero out of the guest went 68-80 -> 224-285
	 * MB/s. */
	v[n++] = "-cpu";
	v[n++] = q->kvm ? "host" : "max,erms=off,fsrm=off";
	v[n++] = "-m";
	v[n++] = a->mem;
	v[n++] = "-smp";
	v[n++] = a->cpus;
	v[n++] = "-object";
	v[n++] = a->memobj;
	v[n++] = "-nodefaults";
	v[n++] = "-no-user-config";
	v[n++] = "-display";
	v[n++] = "none";
	v[n++] = "-no-reboot";
	v[n++] = "-serial";
	v[n++] = a->serial;
	if (q->vhost_user) {
		v[n++] = "-chardev";
		v[n++] = a->chardev;
	}
	v[n++] = "-device";
	v[n++] = a->device;
	v[n++] = "-device";
	v[n++] = a->balloon;
	v[n++] = "-kernel";
	v[n++] = a->kernel;
	v[n++] = "-initrd";
	v[n++] = a->initrd;
	v[n++] = "-append";
	v[n++] = a->append;
	if (q->share) {
		/* virtiofsd (libvhost-user) serves modern virtio only; microvm's
		 * virtio-mmio is legacy unless told (sbx-vsockd serves both). */
		v[n++] = "-global";
		v[n++] = "virtio-mmio.force-legacy=false";
		snprintf(a->share_chardev, sizeof(a->share_chardev), "socket,id=fs,path=%s", q->share);
		snprintf(a->share_device, sizeof(a->share_device),
			 "vhost-user-fs-device,chardev=fs,tag=%s", q->share_tag);
		v[n++] = "-chardev";
		v[n++] = a->share_chardev;
		v[n++] = "-device";
		v[n++] = a->share_device;
	}
	if (q->tap) {
		snprintf(a->netdev, sizeof(a->netdev), "tap,id=net0,ifname=%s,script=no,downscript=no",
			 q->tap);
		snprintf(a->nic, sizeof(a->nic), "virtio-net-device,netdev=net0,mac=%s", q->mac);
		v[n++] = "-netdev";
		v[n++] = a->netdev;
		v[n++] = "-device";
		v[n++] = a->nic;
	}
	for (unsigned i = 0; i < q->ndrives && i < QEMU_DRIVES_MAX; i++) {
		v[n++] = "-drive";
		v[n++] = (char *)q->drives[i].drive;
		v[n++] = "-device";
		if (q->pausable) {
			pci_device(a->drive_dev[i], sizeof(a->drive_dev[i]), q->drives[i].device,
				   QEMU_VSOCK_SLOT + 2 + i);
			v[n++] = a->drive_dev[i];
		} else {
			v[n++] = (char *)q->drives[i].device;
		}
	}
	if (q->qmp) {
		snprintf(a->qmp, sizeof(a->qmp), "unix:%s,server=on,wait=off", q->qmp);
		v[n++] = "-qmp";
		v[n++] = a->qmp;
	}
	v[n] = NULL;
}
