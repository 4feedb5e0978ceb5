#include "transforms/transformspec.h"

#include "transforms/transformregistry.h"

#include <QHash>
#include <QRegularExpression>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

namespace ifs {

using Kind = TransformValue::Kind;

TransformValue TransformValue::none()
{
    return {};
}

TransformValue TransformValue::boolean(bool value)
{
    TransformValue v;
    v.kind = Kind::Bool;
    v.boolValue = value;
    return v;
}

TransformValue TransformValue::integer(qint64 value)
{
    TransformValue v;
    v.kind = Kind::Int;
    v.intValue = value;
    return v;
}

TransformValue TransformValue::real(double value)
{
    TransformValue v;
    v.kind = Kind::Float;
    v.floatValue = value;
    return v;
}

TransformValue TransformValue::string(const QString &value)
{
    TransformValue v;
    v.kind = Kind::String;
    v.text = value;
    return v;
}

TransformValue TransformValue::tuple(const QList<TransformValue> &items)
{
    TransformValue v;
    v.kind = Kind::Tuple;
    v.items = items;
    return v;
}

TransformValue TransformValue::list(const QList<TransformValue> &items)
{
    TransformValue v;
    v.kind = Kind::List;
    v.items = items;
    return v;
}

TransformValue TransformValue::interpolation(const QString &member)
{
    TransformValue v;
    v.kind = Kind::Enum;
    v.text = member;
    return v;
}

TransformValue TransformValue::code(const QString &source)
{
    TransformValue v;
    v.kind = Kind::Code;
    v.text = source;
    return v;
}

TransformValue TransformValue::call(const TransformStep &step)
{
    TransformValue v;
    v.kind = Kind::Call;
    v.text = step.name;
    for (const TransformArgument &arg : step.args) {
        v.items.append(arg.value);
        v.keywords.append(arg.keyword);
    }
    return v;
}

TransformStep TransformValue::toStep() const
{
    TransformStep step;
    if (kind != Kind::Call)
        return step;
    step.name = text;
    for (qsizetype i = 0; i < items.size(); ++i)
        step.args.append({keywords.value(i), items[i]});
    return step;
}

bool operator==(const TransformValue &a, const TransformValue &b)
{
    if (a.kind != b.kind)
        return false;
    switch (a.kind) {
    case Kind::None:
        return true;
    case Kind::Bool:
        return a.boolValue == b.boolValue;
    case Kind::Int:
        return a.intValue == b.intValue;
    case Kind::Float:
        // Bitwise for -0.0 vs 0.0, whose reprs differ.
        return a.floatValue == b.floatValue
            && std::signbit(a.floatValue) == std::signbit(b.floatValue);
    case Kind::String:
    case Kind::Enum:
    case Kind::Code:
        return a.text == b.text;
    case Kind::Tuple:
    case Kind::List:
        return a.items == b.items;
    case Kind::Call:
        return a.text == b.text && a.keywords == b.keywords && a.items == b.items;
    }
    return false;
}

namespace {

using V = TransformValue;

const QStringList &interpolationMembers()
{
    static const QStringList members{
        QStringLiteral("NEAREST"), QStringLiteral("NEAREST_EXACT"), QStringLiteral("BILINEAR"),
        QStringLiteral("BICUBIC"), QStringLiteral("BOX"),           QStringLiteral("HAMMING"),
        QStringLiteral("LANCZOS"),
    };
    return members;
}

int editDistance(const QString &a, const QString &b)
{
    QList<int> row(b.size() + 1);
    for (qsizetype j = 0; j <= b.size(); ++j)
        row[j] = int(j);
    for (qsizetype i = 1; i <= a.size(); ++i) {
        int diagonal = row[0];
        row[0] = int(i);
        for (qsizetype j = 1; j <= b.size(); ++j) {
            const int up = row[j];
            const bool same = a[i - 1].toLower() == b[j - 1].toLower();
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
            diagonal = up;
        }
    }
    return row[b.size()];
}

/// The closest candidate within a few edits, or an empty string.
QString closest(const QString &word, const QStringList &candidates)
{
    QString best;
    int bestDistance = std::max(2, int(word.size()) / 3) + 1;
    for (const QString &candidate : candidates) {
        const int d = editDistance(word, candidate);
        if (d < bestDistance) {
            bestDistance = d;
            best = candidate;
        }
    }
    return best;
}

QString quoted(const QString &text)
{
    return u'“' + text + u'”';
}

// ---- Tokenizer -------------------------------------------------------------------------------

enum class Tok { Name, Int, Float, String, Punct, Code, End };

/// Transforms whose arguments are Python code (a lambda, torch tensors): their argument text is
/// kept as written, for the message that says what to do instead.
bool takesCode(const QString &name)
{
    return name == u"Lambda" || name == u"LinearTransformation";
}

/// torch dtypes ConvertImageDtype may name.
const QStringList &torchDtypes()
{
    static const QStringList dtypes{
        QStringLiteral("float"),    QStringLiteral("float32"), QStringLiteral("float64"),
        QStringLiteral("double"),   QStringLiteral("float16"), QStringLiteral("half"),
        QStringLiteral("bfloat16"), QStringLiteral("uint8"),   QStringLiteral("int8"),
        QStringLiteral("int16"),    QStringLiteral("int32"),   QStringLiteral("int64"),
        QStringLiteral("long"),     QStringLiteral("int"),
    };
    return dtypes;
}

struct Token
{
    Tok kind = Tok::End;
    QString text;
    qsizetype pos = 0;
    qint64 intValue = 0;
    double floatValue = 0.0;
};

class Parser
{
public:
    explicit Parser(const QString &source)
        : m_source(source)
    { }

    Result<TransformPipeline> parse();

private:
    struct RawArg
    {
        QString keyword;
        TransformValue value;
        qsizetype pos = 0;
    };

    std::optional<Error> tokenize();
    std::optional<Error> captureCode(const Token &name, qsizetype &i, bool &captured);
    void appendCodeArguments(qsizetype begin, qsizetype end);
    Error errorAt(qsizetype pos, const QString &what, const QString &suffix = {}) const;

    const Token &peek(int ahead = 0) const
    {
        return m_tokens[std::min(m_index + ahead, m_tokens.size() - 1)];
    }
    bool isPunct(const char16_t *p, int ahead = 0) const
    {
        return peek(ahead).kind == Tok::Punct && peek(ahead).text == QStringView(p);
    }
    std::optional<Error> expect(const char16_t *p, const QString &context);

    Result<QStringList> dottedName();
    std::optional<Error> checkPrefix(const QStringList &prefix, qsizetype pos);
    Result<TransformValue> value();
    Result<TransformValue> number();
    Result<TransformStep> call();
    Result<TransformValue> nestedCall(const QStringList &parts, qsizetype pos);
    Result<TransformStep> callAfterName(const QString &name, qsizetype pos);
    Result<QList<TransformStep>> stepSequence();

    QString m_source;
    QList<Token> m_tokens;
    qsizetype m_index = 0;
};

Error Parser::errorAt(qsizetype pos, const QString &what, const QString &suffix) const
{
    pos = std::clamp<qsizetype>(pos, 0, m_source.size());
    const qsizetype lineStart = pos == 0 ? 0 : m_source.lastIndexOf(u'\n', pos - 1) + 1;
    qsizetype lineEnd = m_source.indexOf(u'\n', pos);
    if (lineEnd < 0)
        lineEnd = m_source.size();
    const int line = int(m_source.left(lineStart).count(u'\n')) + 1;
    const int column = int(pos - lineStart) + 1;
    QString lineText = m_source.mid(lineStart, lineEnd - lineStart);
    if (lineText.endsWith(u'\r'))
        lineText.chop(1);
    QString caret;
    for (qsizetype i = lineStart; i < pos; ++i)
        caret += m_source[i] == u'\t' ? u'\t' : u' ';
    caret += u'^';
    QString message = what + QStringLiteral(" at line %1, column %2").arg(line).arg(column);
    if (!suffix.isEmpty())
        message += u' ' + suffix;
    return Error{message + u'\n' + lineText + u'\n' + caret};
}

std::optional<Error> Parser::tokenize()
{
    const QString &s = m_source;
    qsizetype i = 0;
    while (i < s.size()) {
        const QChar c = s[i];
        if (c.isSpace()) {
            ++i;
            continue;
        }
        if (c == u'#') {
            while (i < s.size() && s[i] != u'\n')
                ++i;
            continue;
        }
        if (c == u'\\' && i + 1 < s.size() && s[i + 1] == u'\n') { // line continuation
            i += 2;
            continue;
        }
        Token token;
        token.pos = i;
        if (c.isLetter() || c == u'_') {
            qsizetype j = i;
            while (j < s.size() && (s[j].isLetterOrNumber() || s[j] == u'_'))
                ++j;
            token.kind = Tok::Name;
            token.text = s.mid(i, j - i);
            i = j;
            if (takesCode(token.text)) {
                bool captured = false;
                if (auto error = captureCode(token, i, captured))
                    return error;
                if (captured)
                    continue;
            }
        } else if (c.isDigit() || (c == u'.' && i + 1 < s.size() && s[i + 1].isDigit())) {
            qsizetype j = i;
            bool isFloat = false;
            auto digits = [&] {
                while (j < s.size() && (s[j].isDigit() || s[j] == u'_'))
                    ++j;
            };
            digits();
            if (j < s.size() && s[j] == u'.') {
                isFloat = true;
                ++j;
                digits();
            }
            if (j < s.size() && (s[j] == u'e' || s[j] == u'E')) {
                qsizetype k = j + 1;
                if (k < s.size() && (s[k] == u'+' || s[k] == u'-'))
                    ++k;
                if (k < s.size() && s[k].isDigit()) {
                    isFloat = true;
                    j = k;
                    digits();
                }
            }
            if (j < s.size() && (s[j].isLetter() || s[j] == u'_'))
                return errorAt(j, QStringLiteral("Invalid number “%1”").arg(s.mid(i, j - i + 1)));
            token.text = s.mid(i, j - i);
            const QString clean = QString(token.text).remove(u'_');
            bool ok = false;
            if (isFloat) {
                token.kind = Tok::Float;
                token.floatValue = clean.toDouble(&ok);
                if (!ok || !std::isfinite(token.floatValue))
                    return errorAt(i, QStringLiteral("Number %1 is out of range").arg(token.text));
            } else {
                token.kind = Tok::Int;
                token.intValue = clean.toLongLong(&ok);
                if (!ok)
                    return errorAt(i, QStringLiteral("Integer %1 is too large").arg(token.text));
            }
            i = j;
        } else if (c == u'\'' || c == u'"') {
            qsizetype j = i + 1;
            QString text;
            bool closed = false;
            while (j < s.size() && s[j] != u'\n') {
                if (s[j] == c) {
                    closed = true;
                    ++j;
                    break;
                }
                if (s[j] == u'\\' && j + 1 < s.size()) {
                    const QChar e = s[j + 1];
                    switch (e.unicode()) {
                    case u'n':
                        text += u'\n';
                        break;
                    case u't':
                        text += u'\t';
                        break;
                    case u'r':
                        text += u'\r';
                        break;
                    case u'0':
                        text += QChar(0);
                        break;
                    case u'\\':
                    case u'\'':
                    case u'"':
                        text += e;
                        break;
                    default:
                        return errorAt(
                            j, QStringLiteral("Unsupported escape “\\%1” in string").arg(e));
                    }
                    j += 2;
                    continue;
                }
                text += s[j++];
            }
            if (!closed)
                return errorAt(i, QStringLiteral("Unterminated string"));
            token.kind = Tok::String;
            token.text = text;
            i = j;
        } else if (QStringView(u"()[],=.-+/").contains(c)) {
            token.kind = Tok::Punct;
            token.text = c;
            ++i;
        } else {
            return errorAt(i, QStringLiteral("Unexpected character %1").arg(quoted(c)));
        }
        m_tokens.append(token);
    }
    Token end;
    end.pos = s.size();
    m_tokens.append(end);
    return std::nullopt;
}

std::optional<Error> Parser::captureCode(const Token &name, qsizetype &i, bool &captured)
{
    const QString &s = m_source;
    // Name(<code>): the text up to the matching parenthesis, strings respected.
    qsizetype k = i;
    while (k < s.size() && s[k].isSpace())
        ++k;
    if (k < s.size() && s[k] == u'(') {
        int depth = 0;
        QChar quote;
        qsizetype end = k;
        for (; end < s.size(); ++end) {
            const QChar ch = s[end];
            if (!quote.isNull()) {
                if (ch == u'\\')
                    ++end;
                else if (ch == quote)
                    quote = QChar();
            } else if (ch == u'\'' || ch == u'"') {
                quote = ch;
            } else if (ch == u'(' || ch == u'[' || ch == u'{') {
                ++depth;
            } else if (ch == u')' || ch == u']' || ch == u'}') {
                if (--depth == 0)
                    break;
            }
        }
        if (end >= s.size())
            return errorAt(k, QStringLiteral("Unclosed “(” after %1").arg(name.text));
        m_tokens.append(name);
        m_tokens.append({Tok::Punct, QStringLiteral("("), k});
        appendCodeArguments(k + 1, end);
        m_tokens.append({Tok::Punct, QStringLiteral(")"), end});
        i = end + 1;
        captured = true;
    }
    return std::nullopt;
}

void Parser::appendCodeArguments(qsizetype begin, qsizetype end)
{
    // The arguments of a call kept as code: split at top-level commas, `name=` kept as a keyword.
    const QString &s = m_source;
    static const QRegularExpression keyword(
        QStringLiteral("^\\s*([A-Za-z_][A-Za-z0-9_]*)\\s*=(?!=)"));
    int depth = 0;
    QChar quote;
    qsizetype start = begin;
    for (qsizetype i = begin; i <= end; ++i) {
        const QChar ch = i < end ? s[i] : QChar(u',');
        if (!quote.isNull()) {
            if (ch == u'\\')
                ++i;
            else if (ch == quote)
                quote = QChar();
            continue;
        }
        if (ch == u'\'' || ch == u'"')
            quote = ch;
        else if (ch == u'(' || ch == u'[' || ch == u'{')
            ++depth;
        else if (ch == u')' || ch == u']' || ch == u'}')
            --depth;
        if (ch != u',' || depth != 0)
            continue;
        QString piece = s.mid(start, i - start);
        qsizetype at = start;
        start = i + 1;
        if (piece.trimmed().isEmpty())
            continue;
        const QRegularExpressionMatch match = keyword.match(piece);
        if (match.hasMatch()) {
            m_tokens.append({Tok::Name, match.captured(1), at + match.capturedStart(1)});
            m_tokens.append({Tok::Punct, QStringLiteral("="), at + match.capturedEnd(0) - 1});
            at += match.capturedEnd(0);
            piece = piece.mid(match.capturedEnd(0));
        }
        m_tokens.append({Tok::Code, piece.trimmed(), at});
        if (i < end)
            m_tokens.append({Tok::Punct, QStringLiteral(","), i});
    }
}

QString describe(const Token &token)
{
    switch (token.kind) {
    case Tok::End:
        return QStringLiteral("end of input");
    case Tok::String:
        return QStringLiteral("a string");
    default:
        return quoted(token.text);
    }
}

std::optional<Error> Parser::expect(const char16_t *p, const QString &context)
{
    if (isPunct(p)) {
        ++m_index;
        return std::nullopt;
    }
    return errorAt(peek().pos,
                   QStringLiteral("Expected “%1” %2 but found %3")
                       .arg(QString::fromUtf16(p), context, describe(peek())));
}

Result<QStringList> Parser::dottedName()
{
    if (peek().kind != Tok::Name)
        return errorAt(peek().pos,
                       QStringLiteral("Expected a name but found %1").arg(describe(peek())));
    QStringList parts{peek().text};
    ++m_index;
    while (isPunct(u".")) {
        ++m_index;
        if (peek().kind != Tok::Name)
            return errorAt(
                peek().pos,
                QStringLiteral("Expected a name after “.” but found %1").arg(describe(peek())));
        parts.append(peek().text);
        ++m_index;
    }
    return parts;
}

std::optional<Error> Parser::checkPrefix(const QStringList &prefix, qsizetype pos)
{
    static const QList<QStringList> allowed{
        {},
        {QStringLiteral("transforms")},
        {QStringLiteral("T")},
        {QStringLiteral("torchvision"), QStringLiteral("transforms")},
    };
    if (allowed.contains(prefix))
        return std::nullopt;
    return errorAt(pos, QStringLiteral("Unknown module %1").arg(quoted(prefix.join(u'.'))),
                   QStringLiteral("(use transforms., T. or torchvision.transforms.)"));
}

Result<TransformValue> Parser::number()
{
    bool negative = false;
    while (isPunct(u"-") || isPunct(u"+")) {
        negative ^= isPunct(u"-");
        ++m_index;
    }
    const Token &token = peek();
    if (token.kind == Tok::Int) {
        ++m_index;
        return V::integer(negative ? -token.intValue : token.intValue);
    }
    if (token.kind == Tok::Float) {
        ++m_index;
        return V::real(negative ? -token.floatValue : token.floatValue);
    }
    return errorAt(token.pos,
                   QStringLiteral("Expected a number but found %1").arg(describe(token)));
}

double asDouble(const TransformValue &v)
{
    return v.kind == Kind::Int ? double(v.intValue) : v.floatValue;
}

Result<TransformValue> Parser::value()
{
    const Token &token = peek();
    if (token.kind == Tok::Int || token.kind == Tok::Float || isPunct(u"-") || isPunct(u"+")) {
        Result<TransformValue> left = number();
        if (!left)
            return left;
        // Simple fractions such as 3/4 (true division, as in Python 3).
        while (isPunct(u"/")) {
            const qsizetype slash = peek().pos;
            ++m_index;
            Result<TransformValue> right = number();
            if (!right)
                return right;
            if (asDouble(right.value()) == 0.0)
                return errorAt(slash, QStringLiteral("Division by zero"));
            const double leftValue = asDouble(left.value());
            const double rightValue = asDouble(right.value());
            // Python divides ints exactly; a double division only matches below 2^53.
            constexpr double kExact = 9007199254740992.0;
            if ((left->kind == Kind::Int && std::abs(leftValue) > kExact)
                || (right->kind == Kind::Int && std::abs(rightValue) > kExact))
                return errorAt(slash, QStringLiteral("Fraction operands are too large"));
            left = V::real(leftValue / rightValue);
        }
        return left;
    }
    if (token.kind == Tok::String) {
        ++m_index;
        return V::string(token.text);
    }
    if (token.kind == Tok::Code) {
        ++m_index;
        return V::code(token.text);
    }
    if (token.kind == Tok::Name) {
        const qsizetype pos = token.pos;
        Result<QStringList> name = dottedName();
        if (!name)
            return name.error();
        QStringList parts = name.value();
        if (parts.size() == 1) {
            if (parts[0] == u"None")
                return V::none();
            if (parts[0] == u"True")
                return V::boolean(true);
            if (parts[0] == u"False")
                return V::boolean(false);
        }
        if (isPunct(u"("))
            return nestedCall(parts, pos);
        if (parts.size() >= 2 && parts[parts.size() - 2] == u"AutoAugmentPolicy") {
            if (auto error = checkPrefix(parts.mid(0, parts.size() - 2), pos))
                return *error;
            static const QStringList members{QStringLiteral("IMAGENET"), QStringLiteral("CIFAR10"),
                                             QStringLiteral("SVHN")};
            if (!members.contains(parts.last()))
                return errorAt(
                    pos, QStringLiteral("Unknown AutoAugmentPolicy %1").arg(quoted(parts.last())),
                    QStringLiteral("(IMAGENET, CIFAR10 or SVHN)"));
            V v;
            v.kind = Kind::Enum;
            v.text = QStringLiteral("AutoAugmentPolicy.") + parts.last();
            return v;
        }
        if (parts.size() == 2 && parts[0] == u"torch" && torchDtypes().contains(parts[1])) {
            V v;
            v.kind = Kind::Enum;
            v.text = parts.join(u'.');
            return v;
        }
        if (parts.size() >= 2 && parts[parts.size() - 2] == u"InterpolationMode") {
            const QString member = parts.last();
            if (auto error = checkPrefix(parts.mid(0, parts.size() - 2), pos))
                return *error;
            if (!interpolationMembers().contains(member)) {
                const QString guess = closest(member, interpolationMembers());
                return errorAt(
                    pos, QStringLiteral("Unknown interpolation mode %1").arg(quoted(member)),
                    guess.isEmpty() ? QString() : QStringLiteral("(did you mean %1?)").arg(guess));
            }
            return V::interpolation(member);
        }
        return errorAt(
            pos, QStringLiteral("Expected a value but found %1").arg(quoted(parts.join(u'.'))),
            QStringLiteral("(values are numbers, strings, True, False, None, tuples, "
                           "lists or InterpolationMode.X)"));
    }
    if (isPunct(u"(") || isPunct(u"[")) {
        const bool isList = isPunct(u"[");
        const char16_t *close = isList ? u"]" : u")";
        ++m_index;
        QList<TransformValue> items;
        bool sawComma = false;
        while (!isPunct(close)) {
            Result<TransformValue> item = value();
            if (!item)
                return item;
            items.append(std::move(item).value());
            if (isPunct(u",")) {
                sawComma = true;
                ++m_index;
            } else if (!isPunct(close)) {
                return errorAt(peek().pos,
                               QStringLiteral("Expected “,” or “%1” but found %2")
                                   .arg(QString::fromUtf16(close), describe(peek())));
            }
        }
        ++m_index;
        if (isList)
            return V::list(items);
        if (items.size() == 1 && !sawComma)
            return items.first(); // parenthesized expression, not a tuple
        return V::tuple(items);
    }
    return errorAt(token.pos, QStringLiteral("Expected a value but found %1").arg(describe(token)));
}

struct BindInput
{
    QString keyword;
    TransformValue value;
    qsizetype pos = -1;
};

/// Binds arguments like Python does; error(pos, what, suffix) builds positioned errors.
template<typename MakeError>
Result<TransformStep> bind(const TransformSignature &sig, const QList<BindInput> &args,
                           qsizetype callPos, MakeError error)
{
    const qsizetype n = sig.parameters.size();
    QList<std::optional<TransformValue>> bound(n);
    qsizetype positional = 0;
    for (const BindInput &arg : args)
        positional += arg.keyword.isEmpty() ? 1 : 0;
    QStringList names;
    for (const TransformParameter &p : sig.parameters)
        names.append(p.name);
    const QString paramList = names.isEmpty() ? QStringLiteral("none") : names.join(u", ");
    qsizetype index = 0;
    for (const BindInput &arg : args) {
        if (arg.keyword.isEmpty()) {
            if (index >= n) {
                return error(
                    arg.pos,
                    QStringLiteral("%1() takes %2 positional argument%3 but %4 %5 given")
                        .arg(sig.name)
                        .arg(n)
                        .arg(n == 1 ? QString() : QStringLiteral("s"))
                        .arg(positional)
                        .arg(positional == 1 ? QStringLiteral("was") : QStringLiteral("were")),
                    QStringLiteral("(parameters: %1)").arg(paramList));
            }
            bound[index++] = arg.value;
            continue;
        }
        const qsizetype at = names.indexOf(arg.keyword);
        if (at < 0) {
            const QString guess = closest(arg.keyword, names);
            return error(
                arg.pos,
                QStringLiteral("%1() got an unexpected keyword argument %2")
                    .arg(sig.name, quoted(arg.keyword)),
                guess.isEmpty()
                    ? QStringLiteral("(parameters: %1)").arg(paramList)
                    : QStringLiteral("(did you mean %1? parameters: %2)").arg(guess, paramList));
        }
        if (bound[at]) {
            return error(arg.pos,
                         QStringLiteral("%1() got multiple values for argument %2")
                             .arg(sig.name, quoted(arg.keyword)),
                         QString());
        }
        bound[at] = arg.value;
    }
    TransformStep step;
    step.name = sig.name;
    for (qsizetype i = 0; i < n; ++i) {
        const TransformParameter &p = sig.parameters[i];
        if (!bound[i]) {
            if (p.required)
                return error(callPos,
                             QStringLiteral("%1() missing required argument %2")
                                 .arg(sig.name, quoted(p.name)),
                             QStringLiteral("(parameters: %1)").arg(paramList));
            continue;
        }
        if (p.required)
            step.args.append({QString(), *bound[i]});
        else if (!(*bound[i] == p.defaultValue))
            step.args.append({p.name, *bound[i]});
    }
    return step;
}

Result<TransformStep> Parser::callAfterName(const QString &name, qsizetype pos)
{
    const TransformSignature *sig = findTransform(name);
    if (!sig) {
        QStringList names;
        for (const TransformSignature &known : knownTransforms())
            names.append(known.name);
        const QString guess = closest(name, names);
        return errorAt(pos, QStringLiteral("Unknown transform %1").arg(quoted(name)),
                       guess.isEmpty() ? QString()
                                       : QStringLiteral("(did you mean %1?)").arg(guess));
    }
    if (auto error = expect(u"(", QStringLiteral("after %1").arg(name)))
        return *error;
    QList<BindInput> args;
    bool sawKeyword = false;
    while (!isPunct(u")")) {
        BindInput arg;
        arg.pos = peek().pos;
        if (peek().kind == Tok::Name && isPunct(u"=", 1)) {
            arg.keyword = peek().text;
            m_index += 2;
            for (const BindInput &other : args) {
                if (other.keyword == arg.keyword)
                    return errorAt(
                        arg.pos,
                        QStringLiteral("Keyword argument %1 repeated").arg(quoted(arg.keyword)));
            }
            sawKeyword = true;
        } else if (sawKeyword) {
            return errorAt(arg.pos, QStringLiteral("Positional argument follows keyword argument"));
        }
        Result<TransformValue> v = value();
        if (!v)
            return v.error();
        arg.value = std::move(v).value();
        args.append(arg);
        if (isPunct(u","))
            ++m_index;
        else if (!isPunct(u")"))
            return errorAt(
                peek().pos,
                QStringLiteral("Expected “,” or “)” but found %1").arg(describe(peek())));
    }
    ++m_index;
    return bind(*sig, args, pos, [this](qsizetype p, const QString &what, const QString &suffix) {
        return errorAt(p, what, suffix);
    });
}

Result<TransformValue> Parser::nestedCall(const QStringList &parts, qsizetype pos)
{
    // A transform inside another's arguments (RandomApply([ColorJitter(0.4)], p=0.5)); the name
    // points past the module prefix, as for the pipeline's own steps.
    const qsizetype namePos = m_tokens[m_index - 1].pos;
    if (auto error = checkPrefix(parts.mid(0, parts.size() - 1), pos))
        return *error;
    if (parts.last() != u"Compose") {
        Result<TransformStep> step = callAfterName(parts.last(), namePos);
        if (!step)
            return step.error();
        return V::call(step.value());
    }
    // Compose(transforms): its one list, kept positional.
    ++m_index;
    if (peek().kind == Tok::Name && peek().text == u"transforms" && isPunct(u"=", 1))
        m_index += 2;
    Result<QList<TransformStep>> steps = stepSequence();
    if (!steps)
        return steps.error();
    QList<TransformValue> items;
    for (const TransformStep &step : steps.value())
        items.append(V::call(step));
    if (isPunct(u",") && isPunct(u")", 1))
        ++m_index;
    if (auto error = expect(u")", QStringLiteral("to close Compose(")))
        return *error;
    TransformStep compose{QStringLiteral("Compose"), {{QString(), V::list(items)}}};
    return V::call(compose);
}

Result<TransformStep> Parser::call()
{
    const qsizetype start = peek().pos;
    Result<QStringList> name = dottedName();
    if (!name)
        return name.error();
    const QStringList &parts = name.value();
    // Point at the transform name itself, past any module prefix.
    qsizetype namePos = start;
    for (qsizetype k = m_index - 1; k >= 0; --k) {
        if (m_tokens[k].kind == Tok::Name) {
            namePos = m_tokens[k].pos;
            break;
        }
    }
    if (auto error = checkPrefix(parts.mid(0, parts.size() - 1), start))
        return *error;
    if (parts.last() == u"Compose")
        return errorAt(namePos, QStringLiteral("Nested Compose is not supported"));
    return callAfterName(parts.last(), namePos);
}

Result<QList<TransformStep>> Parser::stepSequence()
{
    const bool isList = isPunct(u"[");
    if (!isList && !isPunct(u"("))
        return errorAt(
            peek().pos,
            QStringLiteral("Expected a list of transforms but found %1").arg(describe(peek())));
    const char16_t *close = isList ? u"]" : u")";
    ++m_index;
    QList<TransformStep> steps;
    while (!isPunct(close)) {
        if (peek().kind != Tok::Name)
            return errorAt(
                peek().pos,
                QStringLiteral("Expected a transform but found %1").arg(describe(peek())));
        Result<TransformStep> step = call();
        if (!step)
            return step.error();
        steps.append(std::move(step).value());
        if (isPunct(u","))
            ++m_index;
        else if (!isPunct(close))
            return errorAt(peek().pos,
                           QStringLiteral("Expected “,” or “%1” but found %2")
                               .arg(QString::fromUtf16(close), describe(peek())));
    }
    ++m_index;
    return steps;
}

Result<TransformPipeline> Parser::parse()
{
    if (auto error = tokenize())
        return *error;
    if (peek().kind == Tok::End)
        return errorAt(0, QStringLiteral("Expected a transform pipeline but the text is empty"));
    TransformPipeline pipeline;
    if (isPunct(u"[")) {
        Result<QList<TransformStep>> steps = stepSequence();
        if (!steps)
            return steps.error();
        pipeline.steps = std::move(steps).value();
    } else if (peek().kind == Tok::Name) {
        const qsizetype save = m_index;
        const qsizetype start = peek().pos;
        Result<QStringList> name = dottedName();
        if (!name)
            return name.error();
        if (name->last() == u"Compose") {
            if (auto error = checkPrefix(name->mid(0, name->size() - 1), start))
                return *error;
            if (auto error = expect(u"(", QStringLiteral("after Compose")))
                return *error;
            if (peek().kind == Tok::Name && peek().text == u"transforms" && isPunct(u"=", 1))
                m_index += 2;
            Result<QList<TransformStep>> steps = stepSequence();
            if (!steps)
                return steps.error();
            pipeline.steps = std::move(steps).value();
            if (isPunct(u",") && isPunct(u")", 1))
                ++m_index;
            if (auto error = expect(u")", QStringLiteral("to close Compose(")))
                return *error;
        } else {
            m_index = save;
            Result<TransformStep> step = call();
            if (!step)
                return step.error();
            pipeline.steps.append(std::move(step).value());
        }
    } else {
        return errorAt(
            peek().pos,
            QStringLiteral("Expected a transform pipeline but found %1").arg(describe(peek())));
    }
    if (peek().kind != Tok::End)
        return errorAt(peek().pos,
                       QStringLiteral("Unexpected %1 after the pipeline").arg(describe(peek())));
    return pipeline;
}

/// Python's repr() of a float: shortest round-trip digits, exponent outside [-4, 16).
QString pythonFloatRepr(double d)
{
    if (std::isnan(d))
        return QStringLiteral("float('nan')");
    if (std::isinf(d))
        return d > 0 ? QStringLiteral("float('inf')") : QStringLiteral("-float('inf')");
    if (std::signbit(d))
        return u'-' + pythonFloatRepr(-d);
    QString e;
    for (int precision = 1; precision <= 17; ++precision) {
        e = QString::number(d, 'e', precision - 1);
        if (e.toDouble() == d)
            break;
    }
    const qsizetype ePos = e.indexOf(u'e');
    QString digits = e.left(ePos).remove(u'.');
    const int exponent = e.mid(ePos + 1).toInt();
    while (digits.size() > 1 && digits.endsWith(u'0'))
        digits.chop(1);
    QString out;
    if (exponent >= -4 && exponent < 16) {
        if (exponent >= 0) {
            QString intPart = digits.left(exponent + 1);
            while (intPart.size() < exponent + 1)
                intPart += u'0';
            QString frac = digits.mid(exponent + 1);
            out = intPart + u'.' + (frac.isEmpty() ? QStringLiteral("0") : frac);
        } else {
            out = QStringLiteral("0.") + QString(-exponent - 1, u'0') + digits;
        }
    } else {
        out = digits.left(1);
        if (digits.size() > 1)
            out += u'.' + digits.mid(1);
        out += u'e' + QString(exponent < 0 ? u'-' : u'+')
            + QStringLiteral("%1").arg(std::abs(exponent), 2, 10, QLatin1Char('0'));
    }
    return out;
}

QString pythonStringRepr(const QString &text)
{
    const QChar quote = text.contains(u'\'') && !text.contains(u'"') ? u'"' : u'\'';
    QString out(quote);
    for (const QChar c : text) {
        if (c == u'\\' || c == quote)
            out += u'\\' + QString(c);
        else if (c == u'\n')
            out += QStringLiteral("\\n");
        else if (c == u'\t')
            out += QStringLiteral("\\t");
        else if (c == u'\r')
            out += QStringLiteral("\\r");
        else if (c.unicode() < 0x20 || c.unicode() == 0x7f)
            out += QStringLiteral("\\x%1").arg(c.unicode(), 2, 16, QLatin1Char('0'));
        else
            out += c;
    }
    return out + quote;
}

QString printStep(const TransformStep &step)
{
    QStringList args;
    for (const TransformArgument &arg : step.args) {
        const QString literal = toPythonLiteral(arg.value);
        args.append(arg.keyword.isEmpty() ? literal : arg.keyword + u'=' + literal);
    }
    return QStringLiteral("transforms.") + step.name + u'(' + args.join(QStringLiteral(", "))
        + u')';
}

} // namespace

const QList<TransformSignature> &knownTransforms()
{
    static const QList<TransformSignature> transforms = [] {
        QList<TransformSignature> signatures;
        for (const TransformDefinition *definition : transformDefinitions())
            signatures.append({definition->name, definition->parameters});
        return signatures;
    }();
    return transforms;
}

const TransformSignature *findTransform(const QString &name)
{
    for (const TransformSignature &sig : knownTransforms()) {
        if (sig.name == name)
            return &sig;
    }
    return nullptr;
}

Result<TransformPipeline> parseTransforms(const QString &source)
{
    return Parser(source).parse();
}

namespace {

Result<TransformValue> normalizeNested(const TransformValue &value)
{
    if (value.kind == Kind::Tuple || value.kind == Kind::List) {
        TransformValue out = value;
        for (TransformValue &item : out.items) {
            Result<TransformValue> normalized = normalizeNested(item);
            if (!normalized)
                return normalized;
            item = std::move(normalized).value();
        }
        return out;
    }
    if (value.kind != Kind::Call)
        return value;
    if (value.text == u"Compose") {
        // Compose(transforms): one list of transforms, positional.
        if (value.items.size() != 1
            || !(value.keywords[0].isEmpty() || value.keywords[0] == u"transforms")
            || (value.items[0].kind != Kind::List && value.items[0].kind != Kind::Tuple))
            return Error{QStringLiteral("Compose() takes one list of transforms")};
        Result<TransformValue> list = normalizeNested(value.items[0]);
        if (!list)
            return list;
        for (const TransformValue &item : list->items)
            if (item.kind != Kind::Call)
                return Error{QStringLiteral("Compose() takes transforms, not %1")
                                 .arg(toPythonLiteral(item))};
        return TransformValue::call({QStringLiteral("Compose"), {{QString(), list.value()}}});
    }
    Result<TransformStep> step = normalizeStep(value.toStep());
    if (!step)
        return step.error();
    return TransformValue::call(step.value());
}

} // namespace

Result<TransformStep> normalizeStep(const TransformStep &step)
{
    const TransformSignature *sig = findTransform(step.name);
    if (!sig)
        return Error{QStringLiteral("Unknown transform %1").arg(quoted(step.name))};
    QList<BindInput> args;
    for (const TransformArgument &arg : step.args) {
        Result<TransformValue> value = normalizeNested(arg.value);
        if (!value)
            return Error{step.name + QStringLiteral("(): ") + value.errorMessage()};
        args.append({arg.keyword, std::move(value).value(), -1});
    }
    return bind(*sig, args, -1, [](qsizetype, const QString &what, const QString &suffix) {
        return Error{suffix.isEmpty() ? what : what + u' ' + suffix};
    });
}

QString toPythonLiteral(const TransformValue &value)
{
    switch (value.kind) {
    case Kind::None:
        return QStringLiteral("None");
    case Kind::Bool:
        return value.boolValue ? QStringLiteral("True") : QStringLiteral("False");
    case Kind::Int:
        return QString::number(value.intValue);
    case Kind::Float:
        return pythonFloatRepr(value.floatValue);
    case Kind::String:
        return pythonStringRepr(value.text);
    case Kind::Enum:
        if (value.text.startsWith(u"torch."))
            return value.text;
        if (value.text.contains(u'.'))
            return QStringLiteral("transforms.") + value.text;
        return QStringLiteral("transforms.InterpolationMode.") + value.text;
    case Kind::Code:
        return value.text;
    case Kind::Tuple:
    case Kind::List: {
        QStringList items;
        for (const TransformValue &item : value.items)
            items.append(toPythonLiteral(item));
        QString inner = items.join(QStringLiteral(", "));
        if (value.kind == Kind::List)
            return u'[' + inner + u']';
        if (items.size() == 1)
            inner += u',';
        return u'(' + inner + u')';
    }
    case Kind::Call: {
        QStringList args;
        for (qsizetype i = 0; i < value.items.size(); ++i) {
            const QString literal = toPythonLiteral(value.items[i]);
            const QString keyword = value.keywords.value(i);
            args.append(keyword.isEmpty() ? literal : keyword + u'=' + literal);
        }
        return QStringLiteral("transforms.") + value.text + u'(' + args.join(QStringLiteral(", "))
            + u')';
    }
    }
    return {};
}

QString toTorchvisionSource(const TransformPipeline &pipeline)
{
    if (pipeline.steps.isEmpty())
        return QStringLiteral("transforms.Compose([])");
    QString out = QStringLiteral("transforms.Compose([\n");
    for (const TransformStep &step : pipeline.steps) {
        // Canonical form when the step binds; print unknown or invalid steps as they are.
        Result<TransformStep> normalized = normalizeStep(step);
        out += QStringLiteral("    ") + printStep(normalized ? normalized.value() : step)
            + QStringLiteral(",\n");
    }
    return out + QStringLiteral("])");
}

} // namespace ifs
