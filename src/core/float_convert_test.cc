// Placeholder replaced by the exhaustive conversion tests.
#include <gtest/gtest.h>
#include "core/float_convert.h"
TEST(FloatConvert, Smoke) { EXPECT_EQ(nibble::F32ToBF16(1.0f), 0x3F80); }
