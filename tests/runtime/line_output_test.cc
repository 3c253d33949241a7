// LineOutput on real pipes: lines come out whole and in order across both streams; a write to
// a pipe nobody reads returns at once and its line comes out once the pipe is read; past the
// bound lines are dropped, counted and noted where they were; a failed write drops only its
// line; a forked child writes its own lines and not its parent's.
#include "runtime/line_output.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/testing/pipe.h"
#include "tests/testing/process.h"
#include "tests/testing/sanitizer.h"

namespace brrr {
namespace {

using testing::TestPipe;

// What `output` writes once `pipe` is read: reads as the writer writes until Flush says every
// line is out (bounded: 30 s of a writer that writes nothing).
std::string ReadUntilFlushed(TestPipe& pipe, LineOutput& output) {
  std::atomic<bool> flushed{false};
  std::thread flusher([&] { flushed = output.Flush(absl::Seconds(30)); });
  std::string out;
  for (;;) {
    const bool done = flushed.load();
    out += pipe.ReadAvailable();
    if (done) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  flusher.join();
  return out;
}

TEST(LineOutputTest, LinesComeOutWholeAndInTheOrderTheyWerePrintedOnBothStreams) {
  TestPipe both;
  LineOutput output(both.write_end(), both.write_end());
  output.Write(OutputStream::kStdout, "one");
  output.Write(OutputStream::kStderr, "two\n");
  output.Write(OutputStream::kStdout, "");
  output.Write(OutputStream::kStdout, absl::StrFormat("%s %d", "three", 3));
  ASSERT_TRUE(output.Flush(absl::Seconds(30)));
  EXPECT_EQ(both.ReadAvailable(), "one\ntwo\n\nthree 3\n");
  EXPECT_EQ(output.dropped(OutputStream::kStdout), 0u);
  EXPECT_EQ(output.dropped(OutputStream::kStderr), 0u);
}

TEST(LineOutputTest, AWriteToAPipeNobodyReadsReturnsAndTheLineComesOutOnceItIsRead) {
  TestPipe out;
  TestPipe err;
  const size_t filler = out.Fill();
  LineOutput output(out.write_end(), err.write_end());
  // Written from a thread of its own: if Write waited for the reader, this test would end by
  // its time limit with "the writes did not return" instead of hanging.
  std::atomic<bool> returned{false};
  std::thread printer([&] {
    for (int i = 0; i < 100; ++i) output.Write(OutputStream::kStdout, "line " + std::to_string(i));
    returned = true;
  });
  for (int waited_ms = 0; waited_ms < 30000 && !returned; ++waited_ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(returned) << "the writes did not return in 30 s";
  printer.join();
  // Nobody reads: the writer writes nothing, and Flush gives up.
  EXPECT_FALSE(output.Flush(absl::Milliseconds(100)));
  const std::string written = ReadUntilFlushed(out, output);
  std::string want(filler, '.');
  for (int i = 0; i < 100; ++i) want += "line " + std::to_string(i) + "\n";
  EXPECT_EQ(written, want);
  EXPECT_EQ(output.dropped(OutputStream::kStdout), 0u);
}

TEST(LineOutputTest, PastItsBoundLinesAreDroppedCountedAndNotedWhereTheyWere) {
  TestPipe both;
  const size_t filler = both.Fill();
  LineOutput output(both.write_end(), both.write_end(), /*max_queued_bytes=*/1000);
  const std::string fifty(49, 'x');  // 50 bytes with its newline
  for (int i = 0; i < 100; ++i) output.Write(OutputStream::kStdout, fifty);
  const uint64_t dropped = output.dropped(OutputStream::kStdout);
  // 1000 bytes hold 20 lines, and the writer holds one more in its blocked write.
  EXPECT_GE(dropped, 79u);
  EXPECT_LE(dropped, 80u);
  EXPECT_EQ(output.dropped(OutputStream::kStderr), 0u);
  std::string written = ReadUntilFlushed(both, output);
  ASSERT_EQ(written.substr(0, filler), std::string(filler, '.'));
  EXPECT_EQ(written.size() - filler, (100 - dropped) * (fifty.size() + 1)) << "each line whole or not at all";
  // Room again: the next line comes after a note of what was dropped before it.
  output.Write(OutputStream::kStdout, "after");
  written = ReadUntilFlushed(both, output);
  EXPECT_EQ(written, absl::StrFormat("brrr: %u lines of output dropped here: stdout and stderr were not read while "
                                     "1000 bytes of output waited\nafter\n",
                                     dropped));
}

// Once lines have been dropped, no later line is written before the note of the drop: a short
// line that would fit the queue, but not with the note ahead of it, is dropped too (and
// counted), so that the reader never sees output go on past a gap it is not told of.
TEST(LineOutputTest, NoLineIsWrittenPastADropBeforeItsNote) {
  TestPipe both;
  const size_t filler = both.Fill();
  LineOutput output(both.write_end(), both.write_end(), /*max_queued_bytes=*/1000);
  const std::string sixty(59, 'x');  // 60 bytes with its newline: 16 fill 960 of the 1000
  for (int i = 0; i < 100 && output.dropped(OutputStream::kStdout) == 0; ++i) {
    output.Write(OutputStream::kStdout, sixty);
  }
  ASSERT_EQ(output.dropped(OutputStream::kStdout), 1u);
  // 40 bytes are free: room for "y\n", not for the note (about 100 bytes) and "y\n".
  output.Write(OutputStream::kStdout, "y");
  EXPECT_EQ(output.dropped(OutputStream::kStdout), 2u) << "a line went into the queue ahead of the drop's note";
  std::string written = ReadUntilFlushed(both, output);
  ASSERT_EQ(written.substr(0, filler), std::string(filler, '.'));
  EXPECT_EQ(written.find('y'), std::string::npos) << "written past the gap, before its note";
  output.Write(OutputStream::kStdout, "after");
  written = ReadUntilFlushed(both, output);
  EXPECT_EQ(written,
            "brrr: 2 lines of output dropped here: stdout and stderr were not read while 1000 bytes of "
            "output waited\nafter\n");
}

TEST(LineOutputTest, AFailedWriteDropsOnlyItsLine) {
  TestPipe out;
  TestPipe err;
  out.CloseReadEnd();  // writes fail with EPIPE; the writer has SIGPIPE blocked, so it is not raised
  LineOutput output(out.write_end(), err.write_end());
  output.Write(OutputStream::kStdout, "to nobody");
  output.Write(OutputStream::kStderr, "to the reader");
  ASSERT_TRUE(output.Flush(absl::Seconds(30)));
  EXPECT_EQ(output.dropped(OutputStream::kStdout), 1u);
  EXPECT_EQ(output.dropped(OutputStream::kStderr), 0u);
  EXPECT_EQ(err.ReadAvailable(), "to the reader\n");
}

TEST(LineOutputTest, AForkedChildWritesItsOwnLinesAndNotItsParents) {
  // The child starts a writer thread, and this process has threads when it forks.
  if (testing::UnderSanitizer("tsan")) GTEST_SKIP() << "TSan does not run threads started after a multi-threaded fork";
  // The process's output on a full pipe: its writer is blocked, with a line in its write and
  // one queued, when the child is forked.
  TestPipe parent_out;
  const size_t filler = parent_out.Fill();
  const int saved_stdout = ::dup(STDOUT_FILENO);
  ASSERT_GE(saved_stdout, 0);
  ASSERT_EQ(::dup2(parent_out.write_end(), STDOUT_FILENO), STDOUT_FILENO);
  PrintToStdout("parent %d", 1);
  PrintToStdout("parent %d", 2);
  EXPECT_FALSE(LineOutput::Process().Flush(absl::Milliseconds(100)));

  TestPipe child_out;
  const std::string child = testing::RunInForkedChild(
      [&] {
        if (::dup2(child_out.write_end(), STDOUT_FILENO) != STDOUT_FILENO) return 1;
        PrintToStdout("child");
        return LineOutput::Process().Flush(absl::Seconds(10)) ? 0 : 2;
      },
      std::chrono::seconds(20));
  std::string parent_written;
  for (int i = 0; i < 30000 && parent_written.find("parent 2\n") == std::string::npos; ++i) {
    parent_written += parent_out.ReadAvailable();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(LineOutput::Process().Flush(absl::Seconds(30)));
  ASSERT_EQ(::dup2(saved_stdout, STDOUT_FILENO), STDOUT_FILENO);
  ::close(saved_stdout);
  EXPECT_EQ(child, "") << "the child's Flush did not finish (2) or its time limit ran out";
  EXPECT_EQ(child_out.ReadAvailable(), "child\n");
  EXPECT_EQ(parent_written, std::string(filler, '.') + "parent 1\nparent 2\n");
}

}  // namespace
}  // namespace brrr
