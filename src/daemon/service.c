/* Running under a service manager: see service.h. */
#include "daemon/service.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

int service_listen_fds(void)
{
#ifdef HAVE_LIBSYSTEMD
	return sd_listen_fds(1);
#else
	return 0;
#endif
}

int service_is_tcp_listener(int fd)
{
	int type = 0, listening = 0;
	socklen_t len = sizeof type;
	struct sockaddr_storage ss;
	socklen_t ss_len = sizeof ss;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return 0;
	len = sizeof listening;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
		return 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &ss_len) < 0)
		return 0;
	return type == SOCK_STREAM && listening &&
	       (ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
}

void service_notify(const char *state)
{
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, state);
#else
	(void)state;
#endif
}

int service_check_user(const char *user, char *err_buf, size_t cap)
{
	if (geteuid() != 0)
		return 0;
	if (user == NULL) {
		snprintf(err_buf, cap,
			 "refusing to serve as root: set \"user:\" to an "
			 "unprivileged account (or to root, to insist)");
		return -EPERM;
	}
	if (strcmp(user, "root") != 0 && getpwnam(user) == NULL) {
		snprintf(err_buf, cap, "user \"%s\" does not exist", user);
		return -ENOENT;
	}
	return 0;
}

int service_drop_privileges(const char *user, const char *own_path,
			    char *err_buf, size_t cap)
{
	struct passwd *pw;

	if (geteuid() != 0 || user == NULL || strcmp(user, "root") == 0)
		return 0;
	errno = 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		snprintf(err_buf, cap, "user \"%s\" does not exist", user);
		return errno ? -errno : -ENOENT;
	}
	if (own_path != NULL && chown(own_path, pw->pw_uid, pw->pw_gid) < 0) {
		int err = errno;
		snprintf(err_buf, cap, "cannot hand %s to \"%s\": %s",
			 own_path, user, strerror(err));
		return -err;
	}
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		int err = errno;
		snprintf(err_buf, cap, "cannot switch to user \"%s\": %s", user,
			 strerror(err));
		return -err;
	}
	/* Dropped for good: getting root back must now fail. */
	if (setuid(0) == 0) {
		snprintf(err_buf, cap, "could regain root after switching to "
			 "\"%s\"", user);
		return -EPERM;
	}
	return 0;
}
