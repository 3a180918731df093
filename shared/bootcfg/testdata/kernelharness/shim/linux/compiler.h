/* shim: what include/linux/ctype.h needs */
#pragma once
