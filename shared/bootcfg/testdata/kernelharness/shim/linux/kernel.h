/* shim */
#pragma once
#include "../kshim.h"
