/* Workload cgroups: see cgroup.h. */
#include "exec/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

#define HEADROOM_MAX (128ULL << 20)
#define STALE_MAX 256
/* Processes one command's cgroup leaves to the others: a fork bomb in one
 * command still lets `sbx exec ... pkill` start. */
#define PIDS_RESERVE 32
/* The workloads' cpu.weight against the agent's tasks in the root cgroup
 * (a nice-0 task weighs as a cgroup of 100): together the workloads weigh
 * as ten busy tasks, so they keep most of the CPU when they compete with
 * the server (its own work is relaying theirs), and the server keeps a
 * tenth of it however many processes they run. */
#define WORKLOADS_CPU_WEIGHT "1000"

static bool enabled;
static uint64_t command_pids_max; /* 0: no limit of its own */
static uint64_t command_memory_max; /* the workloads', 0: none */
static unsigned next_id = 1;
/* Cgroups whose commands left processes behind: removed when empty. */
static unsigned stale[STALE_MAX];
static unsigned nstale;

static void spare_make(void);

uint64_t cgroup_memory_max(uint64_t total)
{
	return total - MIN(total / 8, HEADROOM_MAX);
}

/* The workloads' pids.max when none is configured: a fork bomb must meet
 * it before their memory.max. A bash bomb's processes cost ~230 KiB each
 * plus their kernel memory; 4,096 of them did not fit below a 768 MiB
 * sandbox's memory.max, and paged their own code in and out for minutes,
 * so that neither the bomb's shell nor a new command got anywhere. One
 * process per 512 KiB of the workloads' memory leaves them room. */
uint64_t cgroup_pids_auto(uint64_t memory_max)
{
	uint64_t n = memory_max / CONFIG_PIDS_AUTO_BYTES;

	if (!memory_max)
		return CONFIG_PIDS_MAX;
	return MIN(MAX(n, CONFIG_PIDS_AUTO_MIN), CONFIG_PIDS_MAX);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, strlen(text)) < 0)
		r = -errno;
	close(fd);
	return r;
}

static uint64_t mem_total(void)
{
	char line[256];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

bool cgroup_setup(const struct config *cfg)
{
	char num[32];
	uint64_t total = mem_total(), pids;
	int r;

	if (access(CGROUP_ROOT "/cgroup.controllers", F_OK) < 0)
		return false;
	if ((r = write_file(CGROUP_ROOT "/cgroup.subtree_control", "+memory +pids")) < 0) {
		log_warn(r, "unable to enable the memory and pids controllers");
		return false;
	}
	if (mkdir(CGROUP_WORKLOADS, 0755) < 0 && errno != EEXIST) {
		log_warn(errno, "unable to create %s", CGROUP_WORKLOADS);
		return false;
	}
	/* Each command's own cgroup below needs the controllers too. */
	write_file(CGROUP_WORKLOADS "/cgroup.subtree_control", "+memory +pids");
	/* CPU: without the controller every workload process weighs as much
	 * as the server, and a bash fork bomb's thousands of them starved it
	 * and every new command. With it each command's cgroup weighs as
	 * much as any other's (the default weight), and all of them together
	 * WORKLOADS_CPU_WEIGHT. No cpu.max: nothing is throttled. */
	if ((r = write_file(CGROUP_ROOT "/cgroup.subtree_control", "+cpu")) < 0) {
		log_warn(r, "unable to enable the cpu controller");
	} else {
		write_file(CGROUP_WORKLOADS "/cgroup.subtree_control", "+cpu");
		if ((r = write_file(CGROUP_WORKLOADS "/cpu.weight", WORKLOADS_CPU_WEIGHT)) < 0)
			log_warn(r, "unable to weigh the workloads for the CPU");
	}
	if (total) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)cgroup_memory_max(total));
		if ((r = write_file(CGROUP_WORKLOADS "/memory.max", num)) < 0)
			log_warn(r, "unable to limit the workloads' memory");
		else
			command_memory_max = cgroup_memory_max(total);
	}
	pids = cfg->pids_max == CONFIG_PIDS_AUTO ? cgroup_pids_auto(command_memory_max) : cfg->pids_max;
	snprintf(num, sizeof(num), "%llu", (unsigned long long)pids);
	if ((r = write_file(CGROUP_WORKLOADS "/pids.max", pids ? num : "max")) < 0)
		log_warn(r, "unable to limit the workloads' processes");
	command_pids_max = pids > 2 * PIDS_RESERVE ? pids - PIDS_RESERVE : 0;
	/* Swap would let the workloads push the agent out: none is set up,
	 * but say so explicitly if the kernel offers the knob. */
	write_file(CGROUP_WORKLOADS "/memory.swap.max", "0");
	enabled = true;
	spare_make();
	return true;
}

static void cg_path(char *out, size_t n, unsigned id, const char *file)
{
	snprintf(out, n, CGROUP_WORKLOADS "/c%u%s%s", id, file ? "/" : "", file ? file : "");
}

/* mkdir, two limits and an open cost a command more than a millisecond
 * under TCG, and rmdir as much again in the kernel's work that follows it
 * (the memory, pids and cpu controllers' state is torn down): the next
 * command's cgroup is ready before it comes. It is the last command's,
 * when that one left nothing behind and met no limit (its counters, such
 * as cpu.stat and pids.peak, then go on from there), else a new one made
 * once the last one's is removed (after its EXIT went out, while the
 * client is away). */
static int spare_fd = -1;
static unsigned spare_id;

static int cgroup_make(unsigned *id)
{
	char path[128], num[32];
	int fd, r, tries = 0;

	/* An id taken before: the directory of an agent that ran before
	 * this one (restarted), maybe still holding its commands. */
	do {
		*id = next_id++;
		cg_path(path, sizeof(path), *id, NULL);
	} while ((r = mkdir(path, 0755) < 0 ? -errno : 0) == -EEXIST && ++tries < STALE_MAX);
	if (r < 0)
		return r;
	/* Its own limits too: they are its cgroup namespace's root, which
	 * nothing inside may change (nsdelegate), so they hold even if the
	 * workloads' were lifted. */
	if (command_pids_max) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)command_pids_max);
		cg_path(path, sizeof(path), *id, "pids.max");
		if ((r = write_file(path, num)) < 0)
			log_warn(r, "unable to limit the processes of %s", path);
	}
	if (command_memory_max) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)command_memory_max);
		cg_path(path, sizeof(path), *id, "memory.max");
		if ((r = write_file(path, num)) < 0)
			log_warn(r, "unable to limit the memory of %s", path);
	}
	cg_path(path, sizeof(path), *id, NULL);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fd = -errno;
		rmdir(path);
	}
	return fd;
}

static void spare_make(void)
{
	if (enabled && spare_fd < 0)
		spare_fd = cgroup_make(&spare_id);
}

int cgroup_new(unsigned *id)
{
	int fd = spare_fd;

	if (!enabled)
		return -ENOTSUP;
	if (fd < 0)
		return cgroup_make(id);
	*id = spare_id;
	spare_fd = -1;
	return fd;
}

bool cgroup_oom_killed(unsigned id)
{
	char path[128], line[128];
	unsigned long long n = 0;
	FILE *f;

	cg_path(path, sizeof(path), id, "memory.events");
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "oom_kill %llu", &n) == 1)
			break;
	fclose(f);
	return n > 0;
}

/* Reads at most size - 1 bytes of `file` of cgroup id into text, NUL-
 * terminated: how many, or -1. */
static ssize_t cg_read(unsigned id, const char *file, char *text, size_t size)
{
	char path[128];
	ssize_t n;
	int fd;

	cg_path(path, sizeof(path), id, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, text, size - 1);
	close(fd);
	if (n >= 0)
		text[n] = '\0';
	return n;
}

/* Does every "key value" line of `file` of cgroup id say 0 (with keys, a
 * NULL-terminated list: every line of one of those keys)? */
static bool cg_zero(unsigned id, const char *file, const char *const *keys)
{
	char text[512], *line, *end;
	ssize_t n = cg_read(id, file, text, sizeof(text));

	if (n < 0 || (size_t)n == sizeof(text) - 1)
		return false;
	for (line = text; *line; line = end + 1) {
		bool wanted = !keys;

		end = strchrnul(line, '\n');
		for (size_t k = 0; keys && keys[k] && !wanted; k++) {
			size_t kl = strlen(keys[k]);

			wanted = (size_t)(end - line) > kl && !memcmp(line, keys[k], kl) && line[kl] == ' ';
		}
		if (wanted && (end - line < 2 || memcmp(end - 2, " 0", 2) != 0))
			return false;
		if (!*end)
			break;
	}
	return true;
}

/* Is `file` of cgroup id empty (a newline at most)? */
static bool cg_empty(unsigned id, const char *file)
{
	char text[8];
	ssize_t n = cg_read(id, file, text, sizeof(text));

	return n == 0 || (n == 1 && text[0] == '\n');
}

/* Empty (no process, no cgroup below, no controller enabled for one), and
 * no limit was ever met in it: no OOM kill for cgroup_oom_killed to find,
 * no memory.max or pids.max reached. Of cgroup.stat only the descendants
 * count (newer kernels add nr_subsys_* lines, never 0 with controllers). */
static bool reusable(unsigned id)
{
	static const char *const below[] = { "nr_descendants", "nr_dying_descendants", NULL };

	return cg_zero(id, "cgroup.events", NULL) && cg_zero(id, "cgroup.stat", below) &&
	       cg_zero(id, "pids.events", NULL) && cg_zero(id, "memory.events", NULL) &&
	       cg_empty(id, "cgroup.subtree_control");
}

static bool try_remove(unsigned id)
{
	char path[128];

	cg_path(path, sizeof(path), id, NULL);
	return rmdir(path) == 0 || errno == ENOENT;
}

void cgroup_done(unsigned id)
{
	/* Retry the stale ones first: commands end all the time. */
	for (unsigned i = 0; i < nstale;)
		if (try_remove(stale[i]))
			stale[i] = stale[--nstale];
		else
			i++;
	if (id && spare_fd < 0 && reusable(id)) {
		char path[128];

		cg_path(path, sizeof(path), id, NULL);
		spare_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		spare_id = id;
		if (spare_fd >= 0)
			return;
	}
	if (id && !try_remove(id) && nstale < STALE_MAX)
		stale[nstale++] = id;
	spare_make();
}
