#ifndef OSPREY_CSPAWN_H
#define OSPREY_CSPAWN_H

#include <spawn.h>

/* posix_spawn_file_actions_addclosefrom_np (glibc 2.34+) is a GNU extension, which Swift's Glibc
 * module does not declare: the child closes every descriptor from `from` on. Returns 0 or an
 * error number. */
int osp_spawn_close_from(posix_spawn_file_actions_t *actions, int from);

#endif
