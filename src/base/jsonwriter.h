#pragma once

#include <QByteArray>
#include <QString>

#include <cstdint>
#include <string_view>
#include <utility>

namespace ifs {

/// A small streaming JSON writer for large outputs (a million samples), where building a
/// QJsonDocument first would double the memory and the time. The caller keeps the structure
/// valid; the writer only handles commas, escaping and number formatting.
class JsonWriter
{
public:
    explicit JsonWriter(int indent = 0)
        : m_indent(indent)
    { }

    JsonWriter &beginObject();
    JsonWriter &endObject();
    JsonWriter &beginArray();
    JsonWriter &endArray();
    JsonWriter &key(std::string_view name); ///< UTF-8
    JsonWriter &value(std::string_view utf8); ///< a string
    /// A QString; lone surrogates (escaped bytes of a file name, see base/filenames.h) are
    /// written as \uXXXX escapes, as Python's json.dumps() writes them.
    JsonWriter &value(const QString &text);
    /// A file name given as file-system bytes, written as json.dumps(os.fsdecode(bytes)) reads
    /// back (see appendJsonFileName()).
    JsonWriter &fileName(std::string_view bytes);
    /// An object key given as file-system bytes (see fileName()).
    JsonWriter &fileNameKey(std::string_view bytes);
    JsonWriter &value(const char *utf8) { return value(std::string_view(utf8)); }
    JsonWriter &value(int64_t number);
    JsonWriter &value(int number) { return value(int64_t(number)); }
    JsonWriter &value(double number);
    JsonWriter &value(bool flag);
    JsonWriter &null();

    const QByteArray &data() const { return m_out; }
    /// Hands what was written so far to `sink` and empties the buffer, keeping its capacity and
    /// the structure's state: a long output streams out in pieces.
    template<class Sink>
    void drain(Sink &&sink)
    {
        sink(std::as_const(m_out));
        m_out.resize(0);
    }
    QByteArray take() { return std::move(m_out); }

    /// Appends `utf8` as a quoted JSON string (invalid UTF-8 bytes become U+FFFD).
    static void appendString(QByteArray &out, std::string_view utf8);
    /// Appends `text` as a quoted JSON string, lone surrogates as \uXXXX escapes.
    static void appendString(QByteArray &out, const QString &text);

    /// Reserves room for `bytes` more bytes of output (a caller that knows the size saves the
    /// buffer's reallocations and their page faults).
    void reserve(qsizetype bytes) { m_out.reserve(m_out.size() + bytes); }

private:
    void separate();
    void newline();

    QByteArray m_out;
    int m_indent;
    int m_depth = 0;
    bool m_first = true;
    bool m_afterKey = false;
};

} // namespace ifs
