/* QEMU's command line for a sandbox: see qemu.h. The state directory
 * appears in it (-serial, -initrd): that is how the launcher recognises
 * its QEMU later, since pids get reused. */
#include "launcher/qemu.h"

#include <stdio.h>

#include "lib/util.h"

void qemu_argv_build(const struct qemu_spec *q, struct qemu_argv *a)
{
	char **v = a->argv;
	int n = 0;

	snprintf(a->mem, sizeof(a->mem), "%lluM", (unsigned long long)q->memory_mib);
	snprintf(a->memobj, sizeof(a->memobj), "memory-backend-memfd,id=mem,size=%lluM,share=on",
		 (unsigned long long)q->memory_mib);
	snprintf(a->machine, sizeof(a->machine), "microvm,memory-backend=mem");
	/* microvm has no PCI: the kernel skips pci_arch_init, which would
	 * only print "PCI: Fatal: No config space access function found". */
	snprintf(a->append, sizeof(a->append), "console=ttyS0 quiet panic=-1 "
		 "initcall_blacklist=pci_arch_init%s%.0lu", q->tsc_khz ? " tsc_early_khz=" : "",
		 q->tsc_khz);
	snprintf(a->serial, sizeof(a->serial), "file:%s", q->console);
	snprintf(a->cpus, sizeof(a->cpus), "%u", q->cpus);
	str_copy(a->name, sizeof(a->name), q->name);
	str_copy(a->kernel, sizeof(a->kernel), q->kernel);
	str_copy(a->initrd, sizeof(a->initrd), q->initrd);
	if (q->vhost_user) {
		snprintf(a->chardev, sizeof(a->chardev), "socket,id=vu,path=%s", q->vhost_user);
		snprintf(a->device, sizeof(a->device), "vhost-user-vsock-device,chardev=vu");
	} else {
		snprintf(a->device, sizeof(a->device), "vhost-vsock-device,guest-cid=%u", q->cid);
	}

	v[n++] = "qemu-system-x86_64";
	v[n++] = "-name";
	v[n++] = a->name;
	v[n++] = "-M";
	v[n++] = a->machine;
	v[n++] = "-accel";
	v[n++] = q->kvm ? "kvm" : "tcg";
	/* -cpu max: with the default CPU the guest RNG stalls ~1 s. */
	v[n++] = "-cpu";
	v[n++] = q->kvm ? "host" : "max";
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
	/* Free-page reporting: pages the guest frees go back to the host
	 * (QEMU punches them out of the memfd), with no balloon inflation. */
	v[n++] = "-device";
	v[n++] = "virtio-balloon-device,free-page-reporting=on";
	v[n++] = "-kernel";
	v[n++] = a->kernel;
	v[n++] = "-initrd";
	v[n++] = a->initrd;
	v[n++] = "-append";
	v[n++] = a->append;
	for (unsigned i = 0; i < q->ndrives && i < QEMU_DRIVES_MAX; i++) {
		v[n++] = "-drive";
		v[n++] = (char *)q->drives[i].drive;
		v[n++] = "-device";
		v[n++] = (char *)q->drives[i].device;
	}
	v[n] = NULL;
}
