#include "lifetime_util.h"
