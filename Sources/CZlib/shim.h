/* zlib from Debian's zlib1g-dev: gzip for rotated flow logs and for reading them back. */
#include <zlib.h>
