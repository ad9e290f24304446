#ifndef RC_INTERNAL_H
#define RC_INTERNAL_H
#include "config.h"
#include "rcmalloc.h"
#endif
