// The pickle length check the checkpoint reader runs before Torch's
// unpickler: pickles Python writes pass whole; a declared length longer than
// what is left is named with its offset. The pickles are Python's own bytes
// (pickle.dumps, protocols 2 and 4).
#include <gtest/gtest.h>

#include <string>

#include "io/pickle_scan.h"

namespace da {
namespace {

std::string problem(const std::string& bytes) {
  return io::pickle_length_problem(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// pickle.dumps(['ab', b'xyz', 2**70, 1.5, {'k': (1, 2)}], protocol=2)
const std::string kProtocol2(
    "\x80\x02]q\x00(X\x02\x00\x00\x00" "abq\x01" "c_codecs\nencode\nq\x02X\x03\x00\x00\x00xyzq\x03X\x06"
    "\x00\x00\x00latin1q\x04\x86q\x05Rq\x06\x8a\t\x00\x00\x00\x00\x00\x00\x00\x00@G?\xf8\x00\x00\x00\x00\x00"
    "\x00}q\x07X\x01\x00\x00\x00kq\x08K\x01K\x02\x86q\tse.",
    103);
// pickle.dumps('hello', protocol=4): a FRAME and a SHORT_BINUNICODE
const std::string kProtocol4("\x80\x04\x95\t\x00\x00\x00\x00\x00\x00\x00\x8c\x05hello\x94.", 21);

TEST(PickleScan, PicklesPythonWritesPass) {
  EXPECT_EQ(problem(kProtocol2), "");
  EXPECT_EQ(problem(kProtocol4), "");
}

TEST(PickleScan, DeclaredLengthsPastTheEndAreNamed) {
  std::string long_string = kProtocol2;
  long_string.replace(7, 4, std::string("\x00\xff\xff\xff", 4));  // 'ab' declared as 0xffffff00 bytes
  EXPECT_EQ(problem(long_string), "a string of 4294967040 bytes at offset 6, 92 bytes left");
  std::string long_frame = kProtocol4;
  long_frame[3] = '\x7f';  // a frame of 127 bytes in 10
  EXPECT_EQ(problem(long_frame), "a frame of 127 bytes at offset 2, 10 bytes left");
  std::string long_long = kProtocol2;
  long_long[63] = '\x7f';  // LONG1 of 127 bytes
  EXPECT_EQ(problem(long_long), "a long integer of 127 bytes at offset 62, 39 bytes left");
  std::string far_memo = kProtocol2;
  far_memo.replace(13, 2, std::string("r\x00\x00\x00\x70", 5));  // q\x01 -> LONG_BINPUT 0x70000000
  EXPECT_EQ(problem(far_memo), "memo index 1879048192 at offset 13, 1 entries stored");
  EXPECT_EQ(problem(std::string("\x80\x02X\x05\x00", 5)), "opcode at offset 2 cut short by the end");
  EXPECT_EQ(problem(std::string("\x80\x02" "c_codecs\nencode", 16)), "a line at offset 2 has no end");
}

}  // namespace
}  // namespace da
