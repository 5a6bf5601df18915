#ifndef OSPREY_CNETNS_H
#define OSPREY_CNETNS_H

/* setns(2) is declared only with _GNU_SOURCE, which Swift's Glibc module does not define. */

/* Moves the calling thread into the network namespace open at `fd`. Returns 0 or -errno. */
int osp_setns_net(int fd);

#endif
