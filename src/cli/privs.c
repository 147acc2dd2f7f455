/* privs.c - directory preparation and the privilege drop. */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privs.h"
#include "../util/log.h"
#include "../util/str.h"
#include "../util/poison.h"

void
privs_plan(const char *user, struct privs_target *t)
{
	struct passwd pw, *res = NULL;
	char tmp[4096];

	memset(t, 0, sizeof(*t));
	if (geteuid() != 0)
		return;
	if (user == NULL || strcmp(user, "root") == 0) {
		log_warn("main", "running_as_root", "sess=main reason=%s",
		    log_q("configured user is root"));
		return;
	}
	if (getpwnam_r(user, &pw, tmp, sizeof(tmp), &res) != 0 || res == NULL) {
		log_warn("main", "running_as_root", "sess=main user=%s reason=%s fix=%s", log_q(user),
		    log_q("the service user does not exist"),
		    log_q("run `make install` (creates it) or set `user:` in the config"));
		return;
	}
	if (str_copy(t->name, sizeof(t->name), user) == -1)
		return;
	t->uid = pw.pw_uid;
	t->gid = pw.pw_gid;
	t->drop = true;
}

int
privs_prepare_dir(const char *dir, mode_t mode, const struct privs_target *t, struct hk_err *err)
{
	char path[PATH_MAX];
	size_t i, n;

	if (str_copy(path, sizeof(path), dir) == -1)
		return hk_err_set(err, HK_E_CONFIG, "path too long: %s", dir);
	n = strlen(path);
	for (i = 1; i <= n; i++) {
		bool last = i == n;

		if (!last && path[i] != '/')
			continue;
		path[i] = '\0';
		if (mkdir(path, last ? mode : 0755) == 0) {
			if (t->drop && chown(path, t->uid, t->gid) == -1)
				return hk_err_sys(err, errno, "chown %s", path);
		} else if (errno != EEXIST) {
			return hk_err_sys(err, errno, "mkdir %s", path);
		}
		if (!last)
			path[i] = '/';
	}
	if (t->drop && chown(dir, t->uid, t->gid) == -1)
		return hk_err_sys(err, errno, "chown %s", dir);
	return 0;
}

/* Can uid/gid search (x) the directory described by st? */
static bool
privs_can_search(const struct stat *st, uid_t uid, gid_t gid)
{
	if (st->st_uid == uid)
		return (st->st_mode & S_IXUSR) != 0;
	if (st->st_gid == gid)
		return (st->st_mode & S_IXGRP) != 0;
	return (st->st_mode & S_IXOTH) != 0;
}

void
privs_check_reach(struct privs_target *t, const char *const *dirs)
{
	char path[PATH_MAX], abs[PATH_MAX];
	struct stat st;
	size_t i, k;

	if (!t->drop)
		return;
	for (k = 0; dirs[k] != NULL; k++) {
		if (realpath(dirs[k], abs) == NULL)
			continue;
		for (i = 1; abs[i - 1] != '\0'; i++) {
			if (abs[i] != '/' && abs[i] != '\0')
				continue;
			if (str_copyn(path, sizeof(path), abs, i ? i : 1) == -1 || stat(path, &st) == -1)
				break;
			if (!privs_can_search(&st, t->uid, t->gid)) {
				log_warn("main", "running_as_root",
				    "sess=main user=%s dir=%s reason=%s fix=%s", log_q(t->name),
				    log_q(path), log_q("the service user cannot reach this directory"),
				    log_q("make the path searchable by the user, or move spool/state"));
				t->drop = false;
				return;
			}
			if (abs[i] == '\0')
				break;
		}
	}
}

int
privs_drop(const struct privs_target *t, struct hk_err *err)
{
	uid_t r, e, s;

	if (!t->drop)
		return 0;
	if (setgroups(1, &t->gid) == -1)
		return hk_err_sys(err, errno, "setgroups");
	if (setresgid(t->gid, t->gid, t->gid) == -1)
		return hk_err_sys(err, errno, "setresgid");
	if (setresuid(t->uid, t->uid, t->uid) == -1)
		return hk_err_sys(err, errno, "setresuid");
	/* Verify root cannot come back: a silently failed drop must stop the start-up. */
	if (getresuid(&r, &e, &s) == -1 || r != t->uid || e != t->uid || s != t->uid)
		return hk_err_set(err, HK_E_TEMP, "user id did not change");
	if (setuid(0) != -1)
		return hk_err_set(err, HK_E_TEMP, "root privileges could be regained");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return hk_err_sys(err, errno, "prctl(PR_SET_NO_NEW_PRIVS)");
	log_info("main", "privileges_dropped", "sess=main user=%s uid=%u", log_q(t->name),
	    (unsigned)t->uid);
	return 0;
}
