/* shim: included by arch/x86/lib/cmdline.c from Linux 6.9 on */
#pragma once
#include "../kshim.h"
