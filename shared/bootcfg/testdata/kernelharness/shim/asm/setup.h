/* shim */
#pragma once
#define COMMAND_LINE_SIZE 2048
