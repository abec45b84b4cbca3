/* Acting as a user: file operations run with the requesting user's
 * fsuid, fsgid and supplementary groups, switched around the system
 * calls and restored after. The server is single-threaded, so the switch
 * cannot leak into another operation; the kernel drops the file
 * capabilities while fsuid is not 0 and restores them after. */
#include <errno.h>
#include <grp.h>
#include <string.h>
#include <sys/fsuid.h>
#include <unistd.h>

#include "fs/internal.h"
#include "lib/config.h"
#include "lib/log.h"

static gid_t own_groups[USER_GROUPS_MAX];
static int own_ngroups = -1;

int fs_cred_init(const struct config *cfg, const char *user, struct fs_cred *cr)
{
	struct user u;
	int r;

	memset(cr, 0, sizeof(*cr));
	r = user_lookup(user ? user : cfg->user, &u);
	if (r < 0)
		return r;
	cr->uid = u.uid;
	cr->gid = u.gid;
	cr->ngroups = u.ngroups;
	memcpy(cr->groups, u.groups, sizeof(cr->groups));
	memcpy(cr->name, u.name, sizeof(cr->name));
	cr->other = u.uid != geteuid() || u.gid != getegid();
	return 0;
}

int fs_cred_enter(struct fs_cred *cr)
{
	if (!cr->other || cr->entered)
		return 0;
	if (own_ngroups < 0) {
		own_ngroups = getgroups(USER_GROUPS_MAX, own_groups);
		if (own_ngroups < 0)
			own_ngroups = 0;
	}
	if (setgroups((size_t)cr->ngroups, cr->groups) < 0)
		return -errno;
	setfsgid(cr->gid);
	setfsuid(cr->uid);
	/* setfs*id report no errors: ask back what is in effect. */
	if ((uid_t)setfsuid((uid_t)-1) != cr->uid || (gid_t)setfsgid((gid_t)-1) != cr->gid) {
		cr->entered = true;
		fs_cred_leave(cr);
		return -EPERM;
	}
	cr->entered = true;
	return 0;
}

void fs_cred_leave(struct fs_cred *cr)
{
	if (!cr->entered)
		return;
	setfsuid(geteuid());
	setfsgid(getegid());
	if (setgroups((size_t)own_ngroups, own_groups) < 0)
		log_warn(errno, "unable to restore the agent's groups");
	cr->entered = false;
}
