/* The served directory, refcounted: see root.h. */
#include "daemon/root.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

struct root_ref {
	int fd;
	unsigned refs;
};

int root_open(const char *path, struct root_ref **out)
{
	struct root_ref *root;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	root = malloc(sizeof *root);
	if (root == NULL) {
		close(fd);
		return -ENOMEM;
	}
	root->fd = fd;
	root->refs = 1;
	*out = root;
	return 0;
}

struct root_ref *root_ref_get(struct root_ref *root)
{
	root->refs++;
	return root;
}

void root_ref_put(struct root_ref *root)
{
	if (root == NULL || --root->refs > 0)
		return;
	close(root->fd);
	free(root);
}

int root_fd(const struct root_ref *root)
{
	return root->fd;
}
