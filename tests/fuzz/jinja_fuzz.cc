// libFuzzer target: arbitrary bytes as a chat template, parsed and rendered with a
// fixed three-message conversation. A nibble::Error (syntax, unsupported construct,
// raise_exception, work limit) is an accepted outcome; a crash, a sanitizer report, a
// hang or a leak is a bug.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nibble/error.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<nibble::ChatMessage> kMessages = {
      {"system", "You are helpful."}, {"user", "Hi {{x}} \xC3\xA9"}, {"assistant", "Hello!"}};
  const std::string_view tmpl(reinterpret_cast<const char*>(data), size);
  try {
    const std::string out = nibble::tokenizer::ApplyChatTemplate(tmpl, kMessages, size % 2 == 0, "<s>", "</s>");
    volatile size_t sink = out.size();
    (void)sink;
  } catch (const nibble::Error&) {
  }
  return 0;
}
