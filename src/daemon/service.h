/* Running under a service manager: systemd readiness notification, socket
 * activation, and dropping root privileges after binding. Without libsystemd
 * (configure --without-systemd) the systemd parts do nothing. */
#ifndef FERRY_SERVICE_H
#define FERRY_SERVICE_H

#include <stddef.h>

/* The first socket systemd passes (SD_LISTEN_FDS_START). */
#define FERRY_LISTEN_FDS_START 3

/* How many listening sockets systemd passed us (0 when not socket
 * activated), starting at FERRY_LISTEN_FDS_START; unsets the environment.
 * A negative errno when they are unusable. */
int service_listen_fds(void);

/* Whether FD is a listening TCP socket. */
int service_is_tcp_listener(int fd);

/* Sends STATE ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...") to the
 * service manager, if there is one. */
void service_notify(const char *state);

/* When running as root: refuses (-EPERM) unless USER is set; for "root"
 * does nothing (the config insisted); otherwise switches groups, gid and
 * uid to USER's for good. When not root: nothing (0). ERR_BUF gets why it
 * failed. 0 or -errno. */
int service_check_user(const char *user, char *err_buf, size_t cap);
/* OWN_PATH, unless NULL, is handed to USER first (the transfer log, which
 * USER must be able to reopen after a rotation). */
int service_drop_privileges(const char *user, const char *own_path,
			    char *err_buf, size_t cap);

#endif
