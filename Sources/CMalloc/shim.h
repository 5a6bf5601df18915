/* glibc's allocator tuning (mallopt), which Swift's Glibc module does not carry. */
#include <malloc.h>
