#pragma once

#include <QByteArray>
#include <QString>

#include <cstdint>
#include <string_view>

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
    JsonWriter &value(const QString &text);
    JsonWriter &value(const char *utf8) { return value(std::string_view(utf8)); }
    JsonWriter &value(int64_t number);
    JsonWriter &value(int number) { return value(int64_t(number)); }
    JsonWriter &value(double number);
    JsonWriter &value(bool flag);
    JsonWriter &null();

    const QByteArray &data() const { return m_out; }
    QByteArray take() { return std::move(m_out); }

    /// Appends `utf8` as a quoted JSON string (invalid UTF-8 bytes become U+FFFD).
    static void appendString(QByteArray &out, std::string_view utf8);

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
