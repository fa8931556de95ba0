// nibble's public API: the only headers the CLI and other clients include.
// May include: the standard library and other include/nibble headers.
#pragma once

#include "nibble/api.h"
#include "nibble/chat.h"
#include "nibble/convert.h"
#include "nibble/cpu.h"
#include "nibble/dtype.h"
#include "nibble/error.h"
#include "nibble/finetune.h"
#include "nibble/generate.h"
#include "nibble/input.h"
#include "nibble/inspect.h"
#include "nibble/model.h"
#include "nibble/memory.h"
#include "nibble/perplexity.h"
#include "nibble/quantize.h"

namespace nibble {
NIBBLE_API const char* Version();
}  // namespace nibble
