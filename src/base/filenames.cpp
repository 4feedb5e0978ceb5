#include "base/filenames.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace ifs {

namespace {

/// Length of the valid UTF-8 sequence that starts at p (Python's strict rules), or 0 when the
/// byte there must be escaped. Only called for bytes >= 0x80.
int sequenceLength(const unsigned char *p, const unsigned char *end)
{
    const unsigned char c = *p;
    const ptrdiff_t left = end - p;
    auto cont = [&](int i, unsigned char low = 0x80, unsigned char high = 0xBF) {
        return i < left && p[i] >= low && p[i] <= high;
    };
    if (c >= 0xC2 && c <= 0xDF)
        return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        // E0: no overlong forms; ED: no surrogates (U+D800..U+DFFF).
        const unsigned char low = c == 0xE0 ? 0xA0 : 0x80;
        const unsigned char high = c == 0xED ? 0x9F : 0xBF;
        return cont(1, low, high) && cont(2) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        // F0: no overlong forms; F4: nothing beyond U+10FFFF.
        const unsigned char low = c == 0xF0 ? 0x90 : 0x80;
        const unsigned char high = c == 0xF4 ? 0x8F : 0xBF;
        return cont(1, low, high) && cont(2) && cont(3) ? 4 : 0;
    }
    return 0;
}

char32_t decodeSequence(const unsigned char *p, int length)
{
    switch (length) {
    case 2:
        return char32_t(p[0] & 0x1F) << 6 | char32_t(p[1] & 0x3F);
    case 3:
        return char32_t(p[0] & 0x0F) << 12 | char32_t(p[1] & 0x3F) << 6 | char32_t(p[2] & 0x3F);
    default:
        return char32_t(p[0] & 0x07) << 18 | char32_t(p[1] & 0x3F) << 12
            | char32_t(p[2] & 0x3F) << 6 | char32_t(p[3] & 0x3F);
    }
}

bool isAscii(std::string_view bytes)
{
    return std::all_of(bytes.begin(), bytes.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0x80) == 0; });
}

/// The code points of os.fsdecode(bytes), escaped bytes as U+DC80..U+DCFF.
void codePoints(std::string_view bytes, std::vector<char32_t> &out)
{
    out.clear();
    const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
    const auto *end = p + bytes.size();
    while (p < end) {
        if (*p < 0x80) {
            out.push_back(*p++);
            continue;
        }
        const int length = sequenceLength(p, end);
        if (length == 0) {
            out.push_back(0xDC00 + *p++);
        } else {
            out.push_back(decodeSequence(p, length));
            p += length;
        }
    }
}

bool isEscape(char16_t c)
{
    return c >= 0xDC80 && c <= 0xDCFF;
}

} // namespace

bool isValidUtf8(std::string_view bytes)
{
    const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
    const auto *end = p + bytes.size();
    while (p < end) {
        // Eight ASCII bytes at a time: a scan asks this of every file name.
        uint64_t word = 0;
        if (end - p >= 8 && (std::memcpy(&word, p, 8), (word & 0x8080808080808080u) == 0)) {
            p += 8;
            continue;
        }
        if (*p < 0x80) {
            ++p;
            continue;
        }
        const int length = sequenceLength(p, end);
        if (length == 0)
            return false;
        p += length;
    }
    return true;
}

QString decodeFileName(std::string_view bytes)
{
    if (isAscii(bytes))
        return QString::fromLatin1(bytes.data(), qsizetype(bytes.size()));
    QString out;
    out.reserve(qsizetype(bytes.size()));
    const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
    const auto *end = p + bytes.size();
    while (p < end) {
        if (*p < 0x80) {
            out.append(QLatin1Char(char(*p++)));
            continue;
        }
        const int length = sequenceLength(p, end);
        if (length == 0) {
            out.append(QChar(char16_t(0xDC00 + *p++)));
            continue;
        }
        const char32_t code = decodeSequence(p, length);
        p += length;
        if (code > 0xFFFF) {
            const char32_t chars[] = {code};
            out.append(QString::fromUcs4(chars, 1));
        } else {
            out.append(QChar(char16_t(code)));
        }
    }
    return out;
}

bool hasEscapedBytes(QStringView name)
{
    return std::any_of(name.begin(), name.end(), [](QChar c) { return isEscape(c.unicode()); });
}

QByteArray encodeFileName(QStringView name)
{
    bool surrogates = false;
    for (QChar c : name) {
        if (c.isSurrogate()) {
            surrogates = true;
            break;
        }
    }
    if (!surrogates)
        return name.toUtf8();
    QByteArray out;
    out.reserve(name.size() * 3);
    const qsizetype n = name.size();
    for (qsizetype i = 0; i < n; ++i) {
        const char16_t c = name[i].unicode();
        char32_t code = c;
        if (isEscape(c)) {
            out.append(char(c - 0xDC00));
            continue;
        }
        if (QChar::isHighSurrogate(c) && i + 1 < n && QChar::isLowSurrogate(name[i + 1].unicode()))
            code = QChar::surrogateToUcs4(c, name[++i].unicode());
        if (code < 0x80) {
            out.append(char(code));
        } else if (code < 0x800) {
            out.append(char(0xC0 | code >> 6)).append(char(0x80 | (code & 0x3F)));
        } else if (code < 0x10000) {
            out.append(char(0xE0 | code >> 12))
                .append(char(0x80 | (code >> 6 & 0x3F)))
                .append(char(0x80 | (code & 0x3F)));
        } else {
            out.append(char(0xF0 | code >> 18))
                .append(char(0x80 | (code >> 12 & 0x3F)))
                .append(char(0x80 | (code >> 6 & 0x3F)))
                .append(char(0x80 | (code & 0x3F)));
        }
    }
    return out;
}

QString displayFileName(const QString &name)
{
    if (!hasEscapedBytes(name))
        return name;
    QString shown = name;
    for (QChar &c : shown) {
        if (isEscape(c.unicode()))
            c = QChar::ReplacementCharacter;
    }
    return shown;
}

bool fileNameLess(std::string_view a, std::string_view b)
{
    // Valid UTF-8 orders by code point when compared byte by byte (as unsigned char).
    if (isValidUtf8(a) && isValidUtf8(b))
        return a < b;
    thread_local std::vector<char32_t> left, right;
    codePoints(a, left);
    codePoints(b, right);
    return std::lexicographical_compare(left.begin(), left.end(), right.begin(), right.end());
}

char *writeJsonFileName(char *out, std::string_view bytes)
{
    static const char kHex[] = "0123456789abcdef";
    *out++ = '"';
    const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
    const auto *end = p + bytes.size();
    while (p < end) {
        // Copy the longest run that needs no escaping in one go: most paths are plain ASCII.
        // DEL is escaped too, as json.dumps() (ensure_ascii) escapes all but ' '..'~'.
        const auto *run = p;
        while (run < end && *run >= 0x20 && *run < 0x7F && *run != '"' && *run != '\\')
            ++run;
        if (run != p) {
            std::memcpy(out, p, size_t(run - p));
            out += run - p;
            p = run;
            continue;
        }
        const unsigned char c = *p;
        if (c < 0x80) {
            // json.dumps: \" \\ \n \r \t \b \f by name, other control characters and DEL
            // as \u00XX.
            const char named = c == '"' ? '"'
                : c == '\\'             ? '\\'
                : c == '\n'             ? 'n'
                : c == '\r'             ? 'r'
                : c == '\t'             ? 't'
                : c == '\b'             ? 'b'
                : c == '\f'             ? 'f'
                                        : '\0';
            *out++ = '\\';
            if (named) {
                *out++ = named;
            } else {
                const char escaped[] = {'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
                std::memcpy(out, escaped, sizeof escaped);
                out += sizeof escaped;
            }
            ++p;
            continue;
        }
        const int length = sequenceLength(p, end);
        if (length > 0) {
            std::memcpy(out, p, size_t(length));
            out += length;
            p += length;
        } else {
            const char escaped[] = {'\\', 'u', 'd', 'c', kHex[c >> 4], kHex[c & 15]};
            std::memcpy(out, escaped, sizeof escaped);
            out += sizeof escaped;
            ++p;
        }
    }
    *out++ = '"';
    return out;
}

void appendJsonFileName(QByteArray &out, std::string_view bytes)
{
    const qsizetype at = out.size();
    out.resize(at + qsizetype(maxJsonFileNameSize(bytes.size())));
    char *end = writeJsonFileName(out.data() + at, bytes);
    out.truncate(end - out.constData());
}

int64_t fileSizeOf(const QString &path)
{
    struct stat st
    {
    };
    if (::stat(encodeFileName(path).constData(), &st) != 0)
        return -1;
    return int64_t(st.st_size);
}

bool FileNameFile::open(OpenMode mode)
{
    if (!hasEscapedBytes(fileName()) || (mode & ~(ReadOnly | Text | Unbuffered)) != 0)
        return QFile::open(mode);
    const QByteArray bytes = encodeFileName(fileName());
    const int fd = ::open(bytes.constData(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        setErrorString(qt_error_string(errno));
        return false;
    }
    if (!QFile::open(fd, mode, AutoCloseHandle)) {
        ::close(fd);
        return false;
    }
    return true;
}

} // namespace ifs
