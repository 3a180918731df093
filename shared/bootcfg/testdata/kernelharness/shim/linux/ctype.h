/* shim: the kernel's own include/linux/ctype.h, copied by gen.sh */
#pragma once
#include "gen/ctype.h"
