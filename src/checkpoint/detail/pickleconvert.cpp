// The restricted unpickler's second half: its object graph to Values, once the pickle has run.
// Warnings are emitted here, where each object's place in the tree is known.
#include "checkpoint/detail/picklemachine.h"

namespace ifs::ckpt::detail::pickle {

namespace {

QString keyRepr(const Value &key)
{
    switch (key.kind()) {
    case Value::Kind::String: {
        QString text = key.toString();
        if (text.size() > 80)
            text = text.left(77) + u"...";
        text.replace(u'\\', QStringLiteral("\\\\")).replace(u'"', QStringLiteral("\\\""));
        return u'"' + text + u'"';
    }
    case Value::Kind::Int:
    case Value::Kind::Bool:
        return QString::number(key.toInt());
    case Value::Kind::Float:
        return QString::number(key.toDouble());
    case Value::Kind::None:
        return QStringLiteral("None");
    default:
        return u'<' + key.typeName() + u'>';
    }
}

} // namespace

QString pathText(const PathLink *link)
{
    QStringList parts;
    for (; link && link->step != PathLink::Root; link = link->parent) {
        switch (link->step) {
        case PathLink::Key:
            parts.prepend(u'[' + keyRepr(*link->key) + u']');
            break;
        case PathLink::Index:
            parts.prepend(u'[' + QString::number(link->index) + u']');
            break;
        case PathLink::Attribute:
            parts.prepend(u'.' + link->key->toString());
            break;
        case PathLink::Root:
            break;
        }
    }
    return u"root" + parts.join(QString());
}

void Machine::warn(const PathLink *path, const QString &text, bool quiet)
{
    if (quiet)
        return;
    ++m_warningCount;
    if (m_warningCount <= kMaxWarnings)
        m_result.warnings.append(pathText(path) + u": " + text);
}

Result<Value> Machine::convert(Obj *o, int depth, const PathLink *path, bool quiet)
{
    if (o->conversion == 2) {
        warnOnce(o, path, quiet);
        return o->value;
    }
    if (o->conversion == 1) {
        warn(path, QStringLiteral("a reference cycle was cut here (None)"), quiet);
        o->expanded = 1;
        return Value();
    }
    if (depth > m_options.maxDepth) {
        return Error{QStringLiteral("%1 nests values more than %2 levels deep (at %3)")
                         .arg(m_options.name)
                         .arg(m_options.maxDepth)
                         .arg(pathText(path).left(60) + u"...")};
    }
    o->conversion = 1;
    Extra &x = *o->x;
    Conversion c{depth, path, quiet};
    Result<Value> result = Value();
    switch (o->kind) {
    case Kind::Leaf:
        break;
    case Kind::BigInt:
        result = Value::object(QStringLiteral("builtins"), QStringLiteral("int"),
                               Value::tuple({Value(x.module)}));
        warn(path, QStringLiteral("an integer beyond 64 bits (%1) kept as text").arg(x.module),
             quiet);
        break;
    case Kind::Tuple:
    case Kind::List:
    case Kind::Set:
    case Kind::FrozenSet:
        result = convertSequence(o, c);
        break;
    case Kind::Dict:
    case Kind::OrderedDict:
        result = convertDict(o, c);
        break;
    case Kind::Global:
        result = convertGlobal(o, c);
        break;
    case Kind::Object:
        result = convertObject(o, c);
        break;
    case Kind::Storage: {
        const StorageRef &ref = x.storage;
        result = Value(Tensor{ref.storage, ref.offset, {ref.numel}, {1}, false, false});
        warn(path, QStringLiteral("a bare storage read as a 1-D tensor"), quiet);
        break;
    }
    case Kind::NumpyDType:
        result = Value::object(QStringLiteral("numpy"), QStringLiteral("dtype"),
                               Value::tuple({Value(numpyName(x))}));
        break;
    case Kind::NumpyArray:
        result = Value::object(QStringLiteral("numpy"), QStringLiteral("ndarray"));
        warn(path, QStringLiteral("a numpy array without data kept as an inert object"), quiet);
        break;
    }
    if (!result)
        return result.error();
    o->value = std::move(result).value();
    o->expanded = c.expanded;
    o->conversion = 2;
    return o->value;
}

/// Adds a converted child's values to its parent's; too many (shared references expanded) is an
/// error.
Status Machine::countChild(Conversion &c, const Obj *child)
{
    c.expanded += child->expanded;
    if (c.expanded > m_options.maxExpanded) {
        return Error{QStringLiteral("%1 expands to more than %2 values (repeated "
                                    "references); refused")
                         .arg(m_options.name)
                         .arg(m_options.maxExpanded)};
    }
    return success();
}

Status Machine::convertItems(Conversion &c, const std::vector<Obj *> &items, QList<Value> *out)
{
    out->reserve(qsizetype(items.size()));
    for (size_t i = 0; i < items.size(); ++i) {
        PathLink link{c.path, PathLink::Index, nullptr, qsizetype(i)};
        Result<Value> item = convert(items[i], c.depth + 1, &link, c.quiet);
        if (!item)
            return item.error();
        if (Status status = countChild(c, items[i]); !status)
            return status;
        out->append(std::move(item).value());
    }
    return success();
}

/// Dict entries; `attributes` shows str keys as .name in paths (an object's __dict__).
Status Machine::convertEntries(Conversion &c, const std::vector<std::pair<Obj *, Obj *>> &entries,
                               Value::Entries *out, bool attributes, bool quiet)
{
    out->reserve(qsizetype(entries.size()));
    for (const auto &[keyObj, valueObj] : entries) {
        Result<Value> key = convert(keyObj, c.depth + 1, c.path, quiet);
        if (!key)
            return key.error();
        PathLink link{c.path,
                      attributes && key.value().isString() ? PathLink::Attribute : PathLink::Key,
                      &key.value(), 0};
        Result<Value> value = convert(valueObj, c.depth + 1, &link, quiet);
        if (!value)
            return value.error();
        if (Status status = countChild(c, keyObj); !status)
            return status;
        if (Status status = countChild(c, valueObj); !status)
            return status;
        out->append({std::move(key).value(), std::move(value).value()});
    }
    return success();
}

/// A child shown as an attribute in paths: root["x"].__dict__, .__args__, .__state__.
Result<Value> Machine::convertAttribute(Conversion &c, Obj *child, const QString &name, bool quiet)
{
    const Value key(name);
    PathLink link{c.path, PathLink::Attribute, &key, 0};
    Result<Value> converted = convert(child, c.depth + 1, &link, quiet);
    if (!converted)
        return converted.error();
    if (Status status = countChild(c, child); !status)
        return status.error();
    return converted;
}

Result<Value> Machine::convertSequence(Obj *o, Conversion &c)
{
    QList<Value> items;
    if (Status status = convertItems(c, o->x->items, &items); !status)
        return status.error();
    if (o->kind == Kind::Tuple)
        return Value::tuple(std::move(items));
    if (o->kind == Kind::List)
        return Value::list(std::move(items));
    return Value::object(QStringLiteral("builtins"),
                         o->kind == Kind::Set ? QStringLiteral("set") : QStringLiteral("frozenset"),
                         Value::tuple({Value::list(std::move(items))}));
}

Result<Value> Machine::convertDict(Obj *o, Conversion &c)
{
    Extra &x = *o->x;
    Value::Entries entries;
    if (Status status = convertEntries(c, x.entries, &entries, false, c.quiet); !status)
        return status.error();
    Value state;
    if (x.state) {
        Result<Value> converted = convertAttribute(c, x.state, QStringLiteral("__dict__"), c.quiet);
        if (!converted)
            return converted.error();
        state = std::move(converted).value();
    }
    Value result = o->kind == Kind::Dict ? Value::dict(std::move(entries))
                                         : Value::orderedDict(std::move(entries), state);
    warnOnce(o, c.path, c.quiet);
    return result;
}

/// A class or function a pickle names without calling it: kept by name.
Value Machine::convertGlobal(Obj *o, Conversion &c)
{
    const Extra &x = *o->x;
    QString why = x.warning;
    if (why.isEmpty()) {
        why = x.module == u"torch" && !x.name.isEmpty() && x.name[0].isLower()
            ? QStringLiteral("torch.%1 kept by name (not a dtype this reader supports)").arg(x.name)
            : QStringLiteral("a reference to %1.%2, kept by name").arg(x.module, x.name);
    }
    warn(c.path, why, c.quiet);
    return Value::object(x.module, x.name);
}

/// Records the classes worth a note: a torch.nn.Module pickled whole (its state holds
/// _parameters and _modules) and TorchScript's `__torch__` classes.
void Machine::noteModuleClass(const Extra &x, bool *module, bool *script)
{
    *script = x.module.startsWith(u"__torch__");
    const QString className = x.module + u'.' + x.name;
    *module = false;
    if (x.state && x.state->kind == Kind::Dict) {
        bool parameters = false;
        bool modules = false;
        for (const auto &[key, value] : x.state->x->entries) {
            if (isString(key)) {
                parameters = parameters || key->value.toString() == u"_parameters";
                modules = modules || key->value.toString() == u"_modules";
            }
        }
        *module = parameters && modules;
    }
    if (*module && !m_moduleClasses.contains(className))
        m_moduleClasses.append(className);
    if (*script && !m_scriptClasses.contains(className))
        m_scriptClasses.append(className);
}

Result<Value> Machine::convertObject(Obj *o, Conversion &c)
{
    Extra &x = *o->x;
    bool module = false;
    bool script = false;
    noteModuleClass(x, &module, &script);
    const bool quietInside = c.quiet || module || script;
    Result<Value> args = convertObjectArgs(x, c, quietInside);
    if (!args)
        return args.error();
    Result<Value> state = convertObjectState(x, c, quietInside);
    if (!state)
        return state.error();
    Value result = Value::object(x.module, x.name, args.value(), state.value());
    if (!module && !script)
        warnOnce(o, c.path, c.quiet);
    return result;
}

Result<Value> Machine::convertObjectArgs(Extra &x, Conversion &c, bool quietInside)
{
    Value args;
    if (x.args) {
        // The object's own warning says enough: what its arguments hold is detail.
        Result<Value> converted = convertAttribute(c, x.args, QStringLiteral("__args__"),
                                                   quietInside || !x.warning.isEmpty());
        if (!converted)
            return converted.error();
        args = std::move(converted).value();
    }
    // Items a pickle appended or set on an instance (list and dict subclasses) become the
    // constructor's argument: cls(list) or cls(dict).
    if (!x.items.empty() || !x.entries.empty()) {
        QList<Value> items;
        if (Status status = convertItems(c, x.items, &items); !status)
            return status.error();
        Value::Entries entries;
        if (Status status = convertEntries(c, x.entries, &entries, false, quietInside); !status)
            return status.error();
        QList<Value> extended = args.items();
        if (!x.items.empty())
            extended.append(Value::list(std::move(items)));
        if (!x.entries.empty())
            extended.append(Value::dict(std::move(entries)));
        args = Value::tuple(std::move(extended));
    }
    return args;
}

Result<Value> Machine::convertObjectState(Extra &x, Conversion &c, bool quietInside)
{
    if (!x.state)
        return Value();
    if (x.state->kind != Kind::Dict || x.state->conversion != 0)
        return convertAttribute(c, x.state, QStringLiteral("__state__"), quietInside);
    // Attributes: shown as .name in paths.
    const qint64 before = c.expanded;
    Value::Entries entries;
    x.state->conversion = 1;
    if (Status status = convertEntries(c, x.state->x->entries, &entries, true, quietInside);
        !status) {
        return status.error();
    }
    x.state->conversion = 2;
    x.state->value = Value::dict(std::move(entries));
    x.state->expanded = 1 + c.expanded - before;
    c.expanded += 1;
    return x.state->value;
}

} // namespace ifs::ckpt::detail::pickle
