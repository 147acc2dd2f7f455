/*
 * privs.h - start-up as root: prepare directories for the service user, then drop to it for good.
 *
 * Policy: started as root, hikyaku drops to the configured user (default "hikyaku"), after
 * checking that root cannot be regained, and sets PR_SET_NO_NEW_PRIVS. When that user does not
 * exist (no `make install` yet) or cannot reach the spool or state directories, it says so in a
 * warning and keeps running as root, so a development checkout still runs; production installs
 * create the user and the directories. Started as another user, nothing changes.
 * Thread: main thread, before any other thread starts.
 */
#ifndef HK_PRIVS_H
#define HK_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

#include "../util/err.h"

struct privs_target {
	bool drop; /* false: stay as we are */
	uid_t uid;
	gid_t gid;
	char name[64];
};

/* Create dir (and missing parents) with mode; chown the dirs it creates (and dir) to t when t->drop. */
HK_MUST_CHECK int privs_prepare_dir(const char *dir, mode_t mode, const struct privs_target *t,
    struct hk_err *err);
/*
 * Decide whether to drop to user: fills t. Logs why a drop is skipped. dirs (NULL-terminated)
 * must all be reachable by the user, else no drop.
 */
void privs_plan(const char *user, struct privs_target *t);
/* After directories exist: verify the user can reach every dir; if not, cancel the drop (logged). */
void privs_check_reach(struct privs_target *t, const char *const *dirs);
/* Drop for good (setgroups, setresgid, setresuid, verify, no_new_privs). */
HK_MUST_CHECK int privs_drop(const struct privs_target *t, struct hk_err *err);

#endif
