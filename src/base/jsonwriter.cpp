#include "base/jsonwriter.h"

#include "base/filenames.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace ifs {

void JsonWriter::appendString(QByteArray &out, std::string_view utf8)
{
    static const char kHex[] = "0123456789abcdef";
    out.append('"');
    const auto *p = reinterpret_cast<const unsigned char *>(utf8.data());
    const auto *end = p + utf8.size();
    while (p < end) {
        // Copy the longest run that needs no escaping in one go: most paths are plain ASCII.
        const auto *run = p;
        while (run < end && *run >= 0x20 && *run < 0x80 && *run != '"' && *run != '\\')
            ++run;
        if (run != p) {
            out.append(reinterpret_cast<const char *>(p), run - p);
            p = run;
            continue;
        }
        const unsigned char c = *p;
        if (c < 0x80) {
            switch (c) {
            case '"':
                out.append("\\\"");
                break;
            case '\\':
                out.append("\\\\");
                break;
            case '\n':
                out.append("\\n");
                break;
            case '\r':
                out.append("\\r");
                break;
            case '\t':
                out.append("\\t");
                break;
            default:
                if (c < 0x20) {
                    const char escaped[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15], 0};
                    out.append(escaped);
                } else {
                    out.append(char(c));
                }
            }
            ++p;
            continue;
        }
        // Copy a valid UTF-8 sequence as it is; replace anything else by U+FFFD.
        int length = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        bool valid = length > 0 && end - p >= length;
        for (int i = 1; valid && i < length; ++i)
            valid = (p[i] & 0xC0) == 0x80;
        if (valid) {
            out.append(reinterpret_cast<const char *>(p), length);
            p += length;
        } else {
            out.append("\xEF\xBF\xBD");
            ++p;
        }
    }
    out.append('"');
}

void JsonWriter::newline()
{
    if (m_indent <= 0)
        return;
    m_out.append('\n');
    m_out.append(QByteArray(m_depth * m_indent, ' '));
}

void JsonWriter::separate()
{
    if (m_afterKey) {
        m_afterKey = false;
        return;
    }
    if (!m_first)
        m_out.append(',');
    if (m_depth > 0)
        newline();
    m_first = false;
}

JsonWriter &JsonWriter::beginObject()
{
    separate();
    m_out.append('{');
    ++m_depth;
    m_first = true;
    return *this;
}

JsonWriter &JsonWriter::endObject()
{
    --m_depth;
    if (!m_first)
        newline();
    m_out.append('}');
    m_first = false;
    return *this;
}

JsonWriter &JsonWriter::beginArray()
{
    separate();
    m_out.append('[');
    ++m_depth;
    m_first = true;
    return *this;
}

JsonWriter &JsonWriter::endArray()
{
    --m_depth;
    if (!m_first)
        newline();
    m_out.append(']');
    m_first = false;
    return *this;
}

JsonWriter &JsonWriter::key(std::string_view name)
{
    separate();
    appendString(m_out, name);
    m_out.append(m_indent > 0 ? ": " : ":");
    m_afterKey = true;
    return *this;
}

JsonWriter &JsonWriter::value(std::string_view utf8)
{
    separate();
    appendString(m_out, utf8);
    return *this;
}

void JsonWriter::appendString(QByteArray &out, const QString &text)
{
    // A lone surrogate has no UTF-8 form (toUtf8() would turn it into '?'): escape it, and write
    // each run between such surrogates as UTF-8.
    static const char kHex[] = "0123456789abcdef";
    bool lone = false;
    for (qsizetype i = 0; i < text.size() && !lone; ++i) {
        const char16_t c = text[i].unicode();
        if (QChar::isHighSurrogate(c) && i + 1 < text.size()
            && QChar::isLowSurrogate(text[i + 1].unicode()))
            ++i;
        else
            lone = QChar::isSurrogate(c);
    }
    if (!lone) {
        const QByteArray utf8 = text.toUtf8();
        appendString(out, std::string_view(utf8.constData(), size_t(utf8.size())));
        return;
    }
    QByteArray quoted;
    qsizetype runStart = 0;
    auto flushRun = [&](qsizetype end) {
        const QByteArray utf8 = QStringView(text).mid(runStart, end - runStart).toUtf8();
        appendString(quoted, std::string_view(utf8.constData(), size_t(utf8.size())));
        out.append(quoted.mid(1, quoted.size() - 2)); // without its quotes
        quoted.clear();
    };
    out.append('"');
    for (qsizetype i = 0; i < text.size(); ++i) {
        const char16_t c = text[i].unicode();
        if (QChar::isHighSurrogate(c) && i + 1 < text.size()
            && QChar::isLowSurrogate(text[i + 1].unicode())) {
            ++i;
            continue;
        }
        if (!QChar::isSurrogate(c))
            continue;
        flushRun(i);
        const char escaped[]
            = {'\\', 'u', kHex[c >> 12], kHex[c >> 8 & 15], kHex[c >> 4 & 15], kHex[c & 15], 0};
        out.append(escaped);
        runStart = i + 1;
    }
    flushRun(text.size());
    out.append('"');
}

JsonWriter &JsonWriter::value(const QString &text)
{
    separate();
    appendString(m_out, text);
    return *this;
}

JsonWriter &JsonWriter::fileName(std::string_view bytes)
{
    separate();
    appendJsonFileName(m_out, bytes);
    return *this;
}

JsonWriter &JsonWriter::fileNameKey(std::string_view bytes)
{
    separate();
    appendJsonFileName(m_out, bytes);
    m_out.append(m_indent > 0 ? ": " : ":");
    m_afterKey = true;
    return *this;
}

JsonWriter &JsonWriter::value(int64_t number)
{
    separate();
    char buffer[24];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, number).ptr;
    m_out.append(buffer, end - buffer);
    return *this;
}

JsonWriter &JsonWriter::value(double number)
{
    separate();
    if (!std::isfinite(number)) {
        m_out.append("null"); // JSON has no NaN or Infinity
        return *this;
    }
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.17g", number);
    m_out.append(buffer);
    return *this;
}

JsonWriter &JsonWriter::value(bool flag)
{
    separate();
    m_out.append(flag ? "true" : "false");
    return *this;
}

JsonWriter &JsonWriter::null()
{
    separate();
    m_out.append("null");
    return *this;
}

} // namespace ifs
