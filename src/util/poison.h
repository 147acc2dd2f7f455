/*
 * poison.h - forbid C library calls that overflow, truncate silently, keep hidden state or cannot
 * report errors (STYLE.md 4). Include it last in every .c file, after system headers.
 */
#ifndef HK_POISON_H
#define HK_POISON_H
#pragma GCC poison strcpy strcat strncpy strncat sprintf vsprintf gets strtok atoi atol atoll
#pragma GCC poison mktemp tmpnam
#endif
