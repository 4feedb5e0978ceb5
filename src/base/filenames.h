#pragma once

#include <QByteArray>
#include <QFile>
#include <QString>
#include <QStringView>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ifs {

// File names on Linux are bytes, not text: `a/\xff\xfe.jpg` is legal. Python (and so torchvision)
// decodes them as UTF-8 with the "surrogateescape" error handler: every byte that is not part of a
// valid UTF-8 sequence becomes the lone surrogate U+DC80 + (byte - 0x80). We keep the same
// convention in QString paths, so that a name survives the round trip through QString unchanged
// and compares, sorts and prints as Python's str does. Qt's own conversions (QFile::encodeName,
// QString::toUtf8) lose such bytes, so code that opens a path that may hold escaped bytes goes
// through encodeFileName() or FileNameFile.

/// True when `bytes` is valid UTF-8 as Python's strict decoder accepts it (no overlong forms, no
/// encoded surrogates, nothing beyond U+10FFFF).
bool isValidUtf8(std::string_view bytes);

/// os.fsdecode() on Linux: UTF-8, each undecodable byte as the lone surrogate U+DC80..U+DCFF.
QString decodeFileName(std::string_view bytes);

/// os.fsencode(): the inverse of decodeFileName(); lone surrogates U+DC80..U+DCFF become the byte
/// they stand for. Any other lone surrogate (no decoded name holds one) is written as its
/// three-byte form.
QByteArray encodeFileName(QStringView name);

/// True when `name` holds an escaped byte, i.e. when QFile would open another file than the name.
bool hasEscapedBytes(QStringView name);

/// For display: escaped bytes become U+FFFD (the replacement character). Not for opening.
QString displayFileName(const QString &name);

/// Python's order of the decoded names (by code point). It is the byte order when both names are
/// valid UTF-8; an escaped byte (U+DC80..U+DCFF) sorts among the code points by its surrogate.
bool fileNameLess(std::string_view a, std::string_view b);

/// Appends `bytes` as a JSON string exactly as Python's json.dumps() writes os.fsdecode(bytes),
/// except that valid non-ASCII text stays raw UTF-8 (as with ensure_ascii=False): undecodable
/// bytes become "\udcXX" escapes, so that json.loads() gives back torchvision's str.
void appendJsonFileName(QByteArray &out, std::string_view bytes);
/// The most bytes appendJsonFileName()/writeJsonFileName() write for a name of `size` bytes
/// (every byte escaped as "\\u00XX" or "\\udcXX", and the quotes).
constexpr size_t maxJsonFileNameSize(size_t size)
{
    return 6 * size + 2;
}
/// appendJsonFileName() into a raw buffer with room for maxJsonFileNameSize() bytes; returns the
/// end of what it wrote. For the hot loop of a large output (`scan --json`).
char *writeJsonFileName(char *out, std::string_view bytes);

/// stat() by the name's bytes (following symlinks): the file's size, or -1 when it does not exist
/// or cannot be reached (as QFileInfo::exists() / size() would say for a name without escapes).
int64_t fileSizeOf(const QString &path);

/// A QFile that opens names holding escaped bytes by the bytes they stand for. Names without any
/// behave exactly as with QFile. Only opening for reading is supported for escaped names.
class FileNameFile : public QFile
{
public:
    explicit FileNameFile(const QString &name)
        : QFile(name)
    { }
    using QFile::open;
    bool open(OpenMode mode) override;
};

} // namespace ifs
