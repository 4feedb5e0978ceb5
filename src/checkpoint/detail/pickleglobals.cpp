// The allow lists of the restricted unpickler: the globals a pickle may turn into values.
//
// Like torch's own `weights_only` unpickler (torch/_weights_only_unpickler.py), a REDUCE or NEWOBJ
// of a global does something only when the global's module and name are in a table here; the
// handler then builds the value from the arguments (a tensor from a storage, an OrderedDict from
// pairs) without calling anything. Unlike torch's, a global outside the tables is not an error:
// it becomes an inert object (module, name, arguments, BUILD state) with a warning that names it,
// so that a checkpoint holding, say, an argparse.Namespace still opens. Nothing is imported,
// looked up or executed in either case.
#include "checkpoint/detail/picklemachine.h"

#include "checkpoint/dtypecodec.h"

#include <algorithm>
#include <limits>

namespace ifs::ckpt::detail::pickle {

namespace {

/// The first entry for `module.name`; else the module's catch-all (a null name); else null.
template<typename Entry, size_t N>
const Entry *findAllowed(const Entry (&table)[N], const QString &module, const QString &name)
{
    const Entry *anyName = nullptr;
    for (const Entry &entry : table) {
        if (module != QStringView(entry.module))
            continue;
        if (!entry.name) {
            anyName = anyName ? anyName : &entry;
            continue;
        }
        if (name == QStringView(entry.name))
            return &entry;
    }
    return anyName;
}

} // namespace

// --- Classes: NEWOBJ, NEWOBJ_EX, INST, OBJ, copyreg's __newobj__ ---------------------------------

// The classes whose instances are containers; any other class makes an inert object.
const Machine::AllowedClass Machine::kAllowedClasses[] = {
    {u"collections", u"OrderedDict", &Machine::newEmpty, Kind::OrderedDict},
    {u"builtins", u"dict", &Machine::newEmpty, Kind::Dict},
    {u"collections", u"defaultdict", &Machine::newCountingDict},
    {u"collections", u"Counter", &Machine::newCountingDict},
    {u"builtins", u"list", &Machine::newEmpty, Kind::List},
    {u"builtins", u"set", &Machine::newEmpty, Kind::Set},
    {u"builtins", u"frozenset", &Machine::newFrozenSet},
    {u"builtins", u"tuple", &Machine::newTuple},
};

Result<Obj *> Machine::newObject(Obj *cls, std::vector<Obj *> args, Obj *kwargs)
{
    if (cls->kind != Kind::Global) {
        return fail(QStringLiteral("creates an instance of something that is not a class (%1)")
                        .arg(cls->kind == Kind::Leaf ? cls->value.typeName()
                                                     : QStringLiteral("an object")));
    }
    const QString name = qualified(cls);
    if (const AllowedClass *allowed = findAllowed(kAllowedClasses, cls->x->module, cls->x->name))
        return (this->*allowed->handler)(Instance{name, args, allowed->kind});
    if (kwargs && !kwargs->x->entries.empty())
        args.push_back(kwargs);
    Result<Obj *> tuple = container(Kind::Tuple, std::move(args));
    if (!tuple)
        return tuple;
    const QString module = cls->x->module;
    QString warning;
    if (!module.startsWith(u"__torch__")) {
        warning = QStringLiteral("%1 kept as an inert object (its code is not run)").arg(name);
    }
    return inert(module, cls->x->name, tuple.value(), warning);
}

Result<Obj *> Machine::newEmpty(const Instance &instance)
{
    if (instance.kind == Kind::Dict || instance.kind == Kind::OrderedDict)
        return make(instance.kind);
    return container(instance.kind, {});
}

Result<Obj *> Machine::newCountingDict(const Instance &instance)
{
    Result<Obj *> dict = make(Kind::Dict);
    if (dict) {
        dict.value()->x->warning = instance.name + u" read as a plain dict";
    }
    return dict;
}

Result<Obj *> Machine::newFrozenSet(const Instance &instance)
{
    const std::vector<Obj *> &args = instance.args;
    return container(Kind::FrozenSet,
                     args.empty() || args[0]->kind != Kind::List ? std::vector<Obj *>{}
                                                                 : args[0]->x->items);
}

Result<Obj *> Machine::newTuple(const Instance &instance)
{
    const std::vector<Obj *> &args = instance.args;
    return container(Kind::Tuple,
                     args.empty() || args[0]->x == nullptr ? std::vector<Obj *>{}
                                                           : args[0]->x->items);
}

// --- Calls: REDUCE -------------------------------------------------------------------------------

// The callables torch checkpoints use. A call of anything else makes an inert object (refuse()).
const Machine::AllowedCall Machine::kAllowedCalls[] = {
    // Tensors and parameters.
    {u"torch._utils", u"_rebuild_tensor_v2", &Machine::callRebuildTensorV2},
    {u"torch._utils", u"_rebuild_tensor", &Machine::callRebuildTensor},
    {u"torch._utils", u"_rebuild_parameter", &Machine::callRebuildParameter},
    {u"torch._utils", u"_rebuild_parameter_with_state", &Machine::callRebuildParameterWithState},
    {u"torch._utils", u"_rebuild_device_tensor_from_numpy", &Machine::callDeviceTensorFromNumpy},
    {u"torch._utils", nullptr, &Machine::callUnsupportedTensor}, // quantized, sparse, meta, ...
    {u"torch._tensor", u"_rebuild_from_type_v2", &Machine::callRebuildFromType},
    {u"torch._tensor", u"_rebuild_from_type", &Machine::callRebuildFromType},
    {u"torch", u"Size", &Machine::callSize},
    {u"torch", u"device", &Machine::callDevice},
    // Python containers and values.
    {u"collections", u"defaultdict", &Machine::callCountingDict},
    {u"collections", u"Counter", &Machine::callCountingDict},
    {u"collections", u"OrderedDict", &Machine::callDict, Kind::OrderedDict},
    {u"builtins", u"dict", &Machine::callDict, Kind::Dict},
    {u"builtins", u"set", &Machine::callSequence, Kind::Set},
    {u"builtins", u"frozenset", &Machine::callSequence, Kind::FrozenSet},
    {u"builtins", u"list", &Machine::callSequence, Kind::List},
    {u"builtins", u"tuple", &Machine::callSequence, Kind::Tuple},
    {u"builtins", u"bytearray", &Machine::callBytes},
    {u"builtins", u"bytes", &Machine::callBytes},
    {u"_codecs", u"encode", &Machine::callEncode},
    {u"builtins", u"complex", &Machine::callValueType},
    {u"builtins", u"slice", &Machine::callValueType},
    {u"builtins", u"range", &Machine::callValueType},
    // Objects: the class is looked up in kAllowedClasses.
    {u"copyreg", u"_reconstructor", &Machine::callReconstructor},
    {u"copyreg", u"__newobj__", &Machine::callNewObj},
    {u"copyreg", u"__newobj_ex__", &Machine::callNewObjEx},
    // numpy arrays, scalars and dtypes.
    {u"numpy.core.multiarray", u"_reconstruct", &Machine::callNumpyReconstruct},
    {u"numpy.core.multiarray", u"scalar", &Machine::callNumpyScalar},
    {u"numpy", u"dtype", &Machine::callNumpyDType},
    {u"numpy.core.numeric", u"_frombuffer", &Machine::callNumpyFromBuffer},
    // TorchScript's typed containers.
    {u"torch.jit._pickle", nullptr, &Machine::callScriptContainer},
    // A storage pickled whole (plain pickle.dumps(tensor)). Python resolves a dotted name, so
    // STACK_GLOBAL may also name it as torch + storage._load_from_bytes.
    {u"torch.storage", u"_load_from_bytes", &Machine::callLoadFromBytes},
    {u"torch", u"storage._load_from_bytes", &Machine::callLoadFromBytes},
};

Result<Obj *> Machine::reduce(Obj *callable, Obj *argsTuple)
{
    if (argsTuple->kind != Kind::Tuple)
        return fail(QStringLiteral("REDUCE's arguments are not a tuple"));
    if (callable->kind != Kind::Global) {
        return fail(QStringLiteral("calls something that is not a function or class (%1)")
                        .arg(callable->kind == Kind::Leaf ? callable->value.typeName()
                                                          : QStringLiteral("an object")));
    }
    const QString module = callable->x->module;
    const QString name = callable->x->name;
    const QString full = module + u'.' + name;
    const AllowedCall *allowed = findAllowed(kAllowedCalls, module, name);
    const Call call{callable,
                    argsTuple,
                    argsTuple->x->items,
                    module,
                    name,
                    full,
                    allowed ? allowed->kind : Kind::Leaf};
    return allowed ? (this->*allowed->handler)(call) : refuse(call);
}

Result<Obj *> Machine::refuse(const Call &call)
{
    return keepInert(
        call, QStringLiteral("a call of %1 kept as an inert object (not executed)").arg(call.full));
}

Result<Obj *> Machine::callRebuildTensorV2(const Call &call)
{
    return rebuildTensor(call.callable, call.args, true);
}

Result<Obj *> Machine::callRebuildTensor(const Call &call)
{
    return rebuildTensor(call.callable, call.args, false);
}

Result<Obj *> Machine::callRebuildParameter(const Call &call)
{
    return rebuildParameter(call.callable, call.argsTuple, call.args, false);
}

Result<Obj *> Machine::callRebuildParameterWithState(const Call &call)
{
    return rebuildParameter(call.callable, call.argsTuple, call.args, true);
}

/// (ndarray, dtype, device, requires_grad)
Result<Obj *> Machine::callDeviceTensorFromNumpy(const Call &call)
{
    const std::vector<Obj *> &args = call.args;
    if (args.size() < 4)
        return callUnsupportedTensor(call);
    Obj *data = args[0];
    if (!isLeaf(data, Value::Kind::Tensor))
        return keepInert(call, QStringLiteral("a device tensor whose data is not an array"));
    Tensor tensor = data->value.toTensor();
    if (isString(args[2]))
        tensor.storage->device = args[2]->value.toString();
    tensor.requiresGrad = isInt(args[3]) && args[3]->value.toInt() != 0;
    if (Status layout = tensor.checkLayout(); !layout)
        return fail(u"invalid tensor: " + layout.errorMessage());
    return leaf(Value(tensor));
}

Result<Obj *> Machine::callUnsupportedTensor(const Call &call)
{
    const QString &name = call.name;
    QString what = name;
    if (name.contains(u"qtensor"))
        what = QStringLiteral("a quantized tensor");
    else if (name.contains(u"sparse"))
        what = QStringLiteral("a sparse tensor");
    else if (name.contains(u"meta"))
        what = QStringLiteral("a meta tensor (no data)");
    else if (name.contains(u"nested"))
        what = QStringLiteral("a nested tensor");
    else if (name.contains(u"xla") || name.contains(u"mlc") || name.contains(u"wrapper"))
        what = QStringLiteral("a tensor of another backend");
    return keepInert(
        call,
        QStringLiteral("%1 (%2) is not supported; kept as an inert object").arg(what, call.full));
}

/// (func, new_type, args, state): a tensor subclass or a tensor with attributes.
Result<Obj *> Machine::callRebuildFromType(const Call &call)
{
    const std::vector<Obj *> &args = call.args;
    if (args.size() < 3 || args[2]->kind != Kind::Tuple)
        return fail(call.full + u" needs (func, type, args, state)");
    if (m_reduceDepth >= 8)
        return fail(call.full + u" nested too deeply");
    ++m_reduceDepth;
    Result<Obj *> tensor = reduce(args[0], args[2]);
    --m_reduceDepth;
    if (!tensor)
        return tensor;
    Obj *type = args[1];
    const bool plain = type->kind == Kind::Global
        && (qualified(type) == u"torch._tensor.Tensor" || qualified(type) == u"torch.Tensor"
            || qualified(type) == u"torch.nn.parameter.Parameter");
    if (!plain && tensor.value()->kind == Kind::Leaf) {
        tensor.value()->extra().warning = QStringLiteral("a tensor of subclass %1 read as a "
                                                         "torch.Tensor")
                                              .arg(qualified(type));
    } else if (args.size() >= 4 && !isEmptyState(args[3]) && tensor.value()->kind == Kind::Leaf) {
        tensor.value()->extra().warning = QStringLiteral("attributes set on the tensor "
                                                         "object ignored");
    }
    return tensor;
}

Result<Obj *> Machine::callSize(const Call &call)
{
    QList<qint64> sizes;
    if (!call.args.empty()) {
        Obj *list = call.args[0];
        if (list->kind != Kind::Tuple && list->kind != Kind::List)
            return fail(QStringLiteral("torch.Size needs a tuple of ints"));
        for (Obj *item : list->x->items) {
            if (!isInt(item))
                return fail(QStringLiteral("torch.Size needs a tuple of ints"));
            sizes.append(item->value.toInt());
        }
    }
    return leaf(Value::size(sizes));
}

Result<Obj *> Machine::callDevice(const Call &call)
{
    const std::vector<Obj *> &args = call.args;
    if (args.empty() || !isString(args[0]))
        return fail(QStringLiteral("torch.device needs a str"));
    QString device = args[0]->value.toString();
    if (args.size() >= 2 && isInt(args[1]) && !device.contains(u':'))
        device += u':' + QString::number(args[1]->value.toInt());
    return leaf(Value::device(device));
}

/// defaultdict(factory) + SETITEMS; Counter(dict).
Result<Obj *> Machine::callCountingDict(const Call &call)
{
    Result<Obj *> dict = newObject(call.callable, {}, nullptr);
    if (dict && call.full == u"collections.Counter" && !call.args.empty()
        && call.args[0]->kind == Kind::Dict) {
        if (Status status = dictInsertAll(dict.value(), call.args[0]); !status)
            return status.error();
    }
    return dict;
}

/// OrderedDict(pairs), dict(pairs): from a dict or from (key, value) pairs.
Result<Obj *> Machine::callDict(const Call &call)
{
    Result<Obj *> dict = make(call.kind);
    if (!dict || call.args.empty())
        return dict;
    Obj *pairs = call.args[0];
    if (pairs->kind == Kind::Dict || pairs->kind == Kind::OrderedDict) {
        if (Status status = dictInsertAll(dict.value(), pairs); !status)
            return status.error();
        return dict;
    }
    if (pairs->kind != Kind::List && pairs->kind != Kind::Tuple)
        return fail(call.full + u" needs (key, value) pairs");
    for (Obj *pair : pairs->x->items) {
        if ((pair->kind != Kind::List && pair->kind != Kind::Tuple) || pair->x->items.size() != 2) {
            return fail(call.full + u" needs (key, value) pairs");
        }
        if (Status status = dictInsert(dict.value(), pair->x->items[0], pair->x->items[1]);
            !status) {
            return status.error();
        }
    }
    return dict;
}

/// set(items), frozenset(items), list(items), tuple(items).
Result<Obj *> Machine::callSequence(const Call &call)
{
    std::vector<Obj *> items;
    if (!call.args.empty()) {
        Obj *source = call.args[0];
        if (!source->x
            || (source->kind != Kind::List && source->kind != Kind::Tuple
                && source->kind != Kind::Set && source->kind != Kind::FrozenSet)) {
            return fail(call.full + u" needs a list");
        }
        items = source->x->items;
    }
    return container(call.kind, std::move(items));
}

Result<Obj *> Machine::callBytes(const Call &call)
{
    const std::vector<Obj *> &args = call.args;
    if (args.empty())
        return leaf(Value::bytes(QByteArray()));
    if (isLeaf(args[0], Value::Kind::Bytes))
        return leaf(args[0]->value);
    if (isString(args[0]) && args.size() >= 2 && isString(args[1])) {
        Result<QByteArray> bytes = bytesOf(args[0], call.full);
        if (!bytes)
            return bytes.error();
        return leaf(Value::bytes(bytes.value()));
    }
    if (args[0]->kind == Kind::List) {
        QByteArray bytes;
        for (Obj *item : args[0]->x->items) {
            if (!isInt(item) || item->value.toInt() < 0 || item->value.toInt() > 255)
                return fail(call.full + u" needs ints from 0 to 255");
            bytes.append(char(item->value.toInt()));
        }
        return leaf(Value::bytes(bytes));
    }
    return fail(call.full + u" needs bytes");
}

/// What Python's protocol 2 writes for bytes: encode(latin-1 str, "latin1").
Result<Obj *> Machine::callEncode(const Call &call)
{
    const std::vector<Obj *> &args = call.args;
    if (args.empty() || !isString(args[0]))
        return fail(QStringLiteral("_codecs.encode needs a str"));
    const QString encoding = args.size() >= 2 && isString(args[1])
        ? args[1]->value.toString().toLower().replace(u'_', u'-')
        : QStringLiteral("utf-8");
    if (encoding == u"latin1" || encoding == u"latin-1" || encoding == u"iso-8859-1"
        || encoding == u"l1") {
        Result<QByteArray> bytes = bytesOf(args[0], call.full);
        if (!bytes)
            return bytes.error();
        return leaf(Value::bytes(bytes.value()));
    }
    if (encoding == u"utf-8" || encoding == u"utf8" || encoding == u"ascii")
        return leaf(Value::bytes(args[0]->value.toString().toUtf8()));
    return keepInert(
        call,
        QStringLiteral("_codecs.encode with encoding %1 kept as an inert object").arg(encoding));
}

/// complex, slice, range: harmless value types, kept as they are without a warning.
Result<Obj *> Machine::callValueType(const Call &call)
{
    return keepInert(call, QString());
}

Result<Obj *> Machine::callReconstructor(const Call &call)
{
    if (call.args.empty())
        return refuse(call);
    return newObject(call.args[0], {}, nullptr);
}

Result<Obj *> Machine::callNewObj(const Call &call)
{
    const std::vector<Obj *> &args = call.args;
    if (args.empty())
        return refuse(call);
    return newObject(args[0], std::vector<Obj *>(args.begin() + 1, args.end()), nullptr);
}

Result<Obj *> Machine::callNewObjEx(const Call &call)
{
    const std::vector<Obj *> &args = call.args;
    if (args.size() < 3 || args[1]->kind != Kind::Tuple || args[2]->kind != Kind::Dict)
        return refuse(call);
    return newObject(args[0], args[1]->x->items, args[2]);
}

Result<Obj *> Machine::callNumpyReconstruct(const Call &call)
{
    Result<Obj *> array = make(Kind::NumpyArray);
    if (array)
        array.value()->x->args = call.argsTuple;
    return array;
}

Result<Obj *> Machine::callNumpyScalar(const Call &call)
{
    return numpyScalar(call.callable, call.argsTuple, call.args);
}

Result<Obj *> Machine::callNumpyDType(const Call &call)
{
    return numpyDType(call.args);
}

/// (buffer, dtype, shape, order): protocol 5's in-band arrays.
Result<Obj *> Machine::callNumpyFromBuffer(const Call &call)
{
    const std::vector<Obj *> &args = call.args;
    if (args.size() < 4)
        return refuse(call);
    Result<QByteArray> bytes = bytesOf(args[0], call.full);
    if (!bytes)
        return bytes.error();
    const bool fortran = isString(args[3]) && args[3]->value.toString() == u"F";
    return numpyArray(args[1], args[2], fortran, bytes.value(), call.callable, call.argsTuple);
}

/// TorchScript's typed containers (build_intlist, restore_type_tag, ...): the value itself.
Result<Obj *> Machine::callScriptContainer(const Call &call)
{
    const QString &name = call.name;
    const std::vector<Obj *> &args = call.args;
    if (name.startsWith(u"build_") && name != u"build_tensor_from_id" && args.size() == 1)
        return args[0];
    if (name == u"restore_type_tag" && !args.empty())
        return args[0];
    return refuse(call);
}

Result<Obj *> Machine::callLoadFromBytes(const Call &call)
{
    if (!m_options.loadFromBytes || call.args.empty())
        return refuse(call);
    Result<QByteArray> bytes = bytesOf(call.args[0], call.full);
    if (!bytes)
        return bytes.error();
    Result<StorageRef> storage = m_options.loadFromBytes(bytes.value());
    if (!storage)
        return fail(storage.errorMessage());
    Result<Obj *> o = make(Kind::Storage);
    if (o)
        o.value()->x->storage = storage.value();
    return o;
}

// --- torch ---------------------------------------------------------------------------------------

Result<Obj *> Machine::rebuildTensor(Obj *callable, const std::vector<Obj *> &args, bool v2)
{
    const QString full = qualified(callable);
    if (args.size() < (v2 ? 6u : 4u))
        return fail(QStringLiteral("%1 needs %2 arguments").arg(full).arg(v2 ? 6 : 4));
    Obj *storage = args[0];
    if (storage->kind != Kind::Storage) {
        Result<Obj *> tuple = container(Kind::Tuple, args);
        if (!tuple)
            return tuple;
        QString why = QStringLiteral("a tensor whose storage could not be read");
        if (storage->kind == Kind::Leaf && storage->value.isObject())
            why = storage->value.objectArgs().at(0).toString();
        return inert(callable->x->module, callable->x->name, tuple.value(),
                     why + QStringLiteral("; kept as an inert object"));
    }
    const auto intList = [&](Obj *o, QList<qint64> *out) {
        if (isLeaf(o, Value::Kind::Size)) {
            *out = o->value.toSize();
            return true;
        }
        if (o->kind != Kind::Tuple && o->kind != Kind::List)
            return false;
        for (Obj *item : o->x->items) {
            if (!isInt(item))
                return false;
            out->append(item->value.toInt());
        }
        return true;
    };
    if (!isInt(args[1]))
        return fail(full + u": the storage offset is not an int");
    Tensor tensor;
    const StorageRef &ref = storage->x->storage;
    tensor.storage = ref.storage;
    const qint64 offset = args[1]->value.toInt();
    if (!intList(args[2], &tensor.shape) || !intList(args[3], &tensor.stride))
        return fail(full + u": the size or stride is not a tuple of ints");
    if (tensor.shape.size() != tensor.stride.size())
        return fail(full + u": the size and the stride have different lengths");
    if (v2 && !isInt(args[4]))
        return fail(full + u": requires_grad is not a bool");
    tensor.requiresGrad = v2 && args[4]->value.toInt() != 0;
    if (offset < 0 || !checkedAdd(offset, ref.offset, &tensor.offset))
        return fail(full + u": invalid storage offset");

    // The view must fit the (possibly viewed) storage, not just the root storage.
    qint64 last = offset;
    qint64 count = 1;
    bool overflow = false;
    for (qsizetype i = 0; i < tensor.shape.size(); ++i) {
        const qint64 size = tensor.shape[i];
        const qint64 step = tensor.stride[i];
        if (size < 0 || step < 0)
            return fail(full + u": negative size or stride");
        qint64 reach = 0;
        overflow = overflow || !checkedMul(count, size, &count)
            || (size > 0 && !checkedMul(size - 1, step, &reach)) || !checkedAdd(last, reach, &last);
    }
    if (overflow)
        return fail(full + u": the shape overflows");
    if (count > 0 && last >= ref.numel) {
        return fail(QStringLiteral("%1: the view needs %2 elements but its storage holds %3")
                        .arg(full)
                        .arg(last + 1)
                        .arg(ref.numel));
    }
    // The storage's bytes may not be there yet (legacy files put them after the pickle): the
    // bounds were checked against the element count above.
    if (tensor.requiresGrad && !isFloatingPoint(ref.storage->dtype)) {
        return fail(QStringLiteral("%1: only floating point and complex tensors can require "
                                   "gradients, not %2")
                        .arg(full, dtypeName(ref.storage->dtype)));
    }

    Result<Obj *> o = leaf(Value(tensor));
    if (!o)
        return o;
    if (v2 && !isEmptyState(args[5]))
        o.value()->extra().warning = QStringLiteral("the tensor's backward hooks were dropped");
    if (v2 && args.size() >= 7 && !isEmptyState(args[6])) {
        o.value()->extra().warning = QStringLiteral("the tensor's metadata (e.g. conjugate or "
                                                    "negative bits) was ignored");
    }
    return o;
}

Result<Obj *> Machine::rebuildParameter(Obj *callable, Obj *argsTuple,
                                        const std::vector<Obj *> &args, bool withState)
{
    const QString full = qualified(callable);
    if (args.size() < (withState ? 4u : 3u))
        return fail(full + u": too few arguments");
    if (!isLeaf(args[0], Value::Kind::Tensor)) {
        return inert(callable->x->module, callable->x->name, argsTuple,
                     QStringLiteral("a parameter whose data is not a tensor; kept as an inert "
                                    "object"));
    }
    if (!isInt(args[1]))
        return fail(full + u": requires_grad is not a bool");
    const Tensor parameter = args[0]->value.toTensor().asParameter(args[1]->value.toInt() != 0);
    if (parameter.requiresGrad && !isFloatingPoint(parameter.dtype())) {
        return fail(QStringLiteral("%1: only floating point and complex tensors can require "
                                   "gradients, not %2")
                        .arg(full, dtypeName(parameter.dtype())));
    }
    Result<Obj *> o = leaf(Value(parameter));
    if (!o)
        return o;
    if (!isEmptyState(args[2]))
        o.value()->extra().warning = QStringLiteral("the parameter's backward hooks were dropped");
    if (withState && !isEmptyState(args[3])) {
        o.value()->extra().warning = QStringLiteral("attributes set on the parameter object "
                                                    "were ignored");
    }
    return o;
}

// --- numpy -------------------------------------------------------------------------------------

namespace {

std::optional<DType> numpyToDType(char kind, int size)
{
    switch (kind) {
    case 'f':
        return size == 2 ? std::optional(DType::Float16)
            : size == 4  ? std::optional(DType::Float32)
            : size == 8  ? std::optional(DType::Float64)
                         : std::nullopt;
    case 'i':
        return size == 1 ? std::optional(DType::Int8)
            : size == 2  ? std::optional(DType::Int16)
            : size == 4  ? std::optional(DType::Int32)
            : size == 8  ? std::optional(DType::Int64)
                         : std::nullopt;
    case 'u':
        return size == 1 ? std::optional(DType::UInt8) : std::nullopt;
    case 'b':
        return size == 1 ? std::optional(DType::Bool) : std::nullopt;
    case 'c':
        return size == 8 ? std::optional(DType::Complex64)
            : size == 16 ? std::optional(DType::Complex128)
                         : std::nullopt;
    default:
        return std::nullopt;
    }
}

/// Little-endian elements from numpy's bytes in the given order.
QByteArray toLittleEndian(QByteArray bytes, char order, DType dtype)
{
    const int size = elementSize(dtype);
    if (order != '>' || size == 1)
        return bytes;
    // Complex numbers swap each of their two parts.
    const int part = (dtype == DType::Complex64 || dtype == DType::Complex128) ? size / 2 : size;
    char *data = bytes.data();
    for (qsizetype i = 0; i + part <= bytes.size(); i += part)
        std::reverse(data + i, data + i + part);
    return bytes;
}

} // namespace

QString numpyName(const Extra &x)
{
    return QString::fromLatin1(QByteArray(1, x.numpyOrder) + QByteArray(1, x.numpyKind))
        + QString::number(x.numpySize);
}

Result<Obj *> Machine::numpyDType(const std::vector<Obj *> &args)
{
    if (args.empty() || !isString(args[0]))
        return fail(QStringLiteral("numpy.dtype needs a str"));
    QString spec = args[0]->value.toString();
    Result<Obj *> o = make(Kind::NumpyDType);
    if (!o)
        return o;
    Extra &x = *o.value()->x;
    if (!spec.isEmpty()
        && (spec[0] == u'<' || spec[0] == u'>' || spec[0] == u'|' || spec[0] == u'=')) {
        x.numpyOrder = spec[0] == u'>' ? '>' : '<';
        spec = spec.mid(1);
    }
    if (spec == u"?")
        spec = QStringLiteral("b1");
    x.module = spec; // shown in messages
    if (spec.isEmpty()) {
        x.numpySupported = false;
        return o;
    }
    x.numpyKind = char(spec[0].toLatin1());
    bool ok = false;
    x.numpySize = spec.mid(1).toInt(&ok);
    if (!ok || x.numpySize <= 0 || x.numpySize > 64)
        x.numpySupported = false;
    return o;
}

Result<Obj *> Machine::numpyScalar(Obj *callable, Obj *argsTuple, const std::vector<Obj *> &args)
{
    if (args.size() < 2 || args[0]->kind != Kind::NumpyDType)
        return fail(QStringLiteral("numpy scalar needs a dtype and its bytes"));
    const Extra &x = *args[0]->x;
    if (x.numpyKind == 'O')
        return args[1]; // an object scalar holds the object itself
    const std::optional<DType> dtype
        = x.numpySupported ? numpyToDType(x.numpyKind, x.numpySize) : std::nullopt;
    const bool wideUnsigned = x.numpySupported && x.numpyKind == 'u'
        && (x.numpySize == 2 || x.numpySize == 4 || x.numpySize == 8);
    if (!dtype && !wideUnsigned) {
        return inert(callable->x->module, callable->x->name, argsTuple,
                     QStringLiteral("a numpy scalar of dtype %1 is not supported; kept as an "
                                    "inert object")
                         .arg(numpyName(x)));
    }
    Result<QByteArray> raw = bytesOf(args[1], QStringLiteral("the numpy scalar"));
    if (!raw)
        return raw.error();
    if (raw.value().size() != x.numpySize)
        return fail(QStringLiteral("a numpy scalar of %1 bytes holds %2")
                        .arg(x.numpySize)
                        .arg(raw.value().size()));
    QByteArray bytes = raw.value();
    if (x.numpyOrder == '>')
        std::reverse(bytes.begin(), bytes.end());
    const char *p = bytes.constData();
    if (wideUnsigned) {
        quint64 value = x.numpySize == 2 ? qFromLittleEndian<quint16>(p)
            : x.numpySize == 4           ? qFromLittleEndian<quint32>(p)
                                         : qFromLittleEndian<quint64>(p);
        if (value > quint64(std::numeric_limits<qint64>::max())) {
            Result<Obj *> big = make(Kind::BigInt);
            if (big)
                big.value()->x->module = QString::number(value);
            return big;
        }
        return leaf(Value::fromInt(qint64(value)));
    }
    switch (*dtype) {
    case DType::Float16:
        return leaf(Value(double(halfToFloat(qFromLittleEndian<quint16>(p)))));
    case DType::Float32:
        return leaf(Value(double(qFromLittleEndian<float>(p))));
    case DType::Float64:
        return leaf(Value(qFromLittleEndian<double>(p)));
    case DType::Int8:
        return leaf(Value::fromInt(qint8(p[0])));
    case DType::Int16:
        return leaf(Value::fromInt(qFromLittleEndian<qint16>(p)));
    case DType::Int32:
        return leaf(Value::fromInt(qFromLittleEndian<qint32>(p)));
    case DType::Int64:
        return leaf(Value::fromInt(qFromLittleEndian<qint64>(p)));
    case DType::UInt8:
        return leaf(Value::fromInt(quint8(p[0])));
    case DType::Bool:
        return leaf(Value(p[0] != 0));
    case DType::Complex64:
    case DType::Complex128: {
        // A Python complex, inert as builtins.complex(real, imag).
        const bool wide = *dtype == DType::Complex128;
        const double re = wide ? qFromLittleEndian<double>(p) : qFromLittleEndian<float>(p);
        const double im = wide ? qFromLittleEndian<double>(p + 8) : qFromLittleEndian<float>(p + 4);
        Result<Obj *> real = leaf(Value(re));
        Result<Obj *> imag = real ? leaf(Value(im)) : real;
        if (!imag)
            return imag;
        Result<Obj *> tuple = container(Kind::Tuple, {real.value(), imag.value()});
        if (!tuple)
            return tuple;
        return inert(QStringLiteral("builtins"), QStringLiteral("complex"), tuple.value(),
                     QString());
    }
    case DType::BFloat16:
        break;
    }
    return fail(QStringLiteral("unexpected numpy scalar"));
}

Result<Obj *> Machine::numpyArray(Obj *dtypeObj, Obj *shapeObj, bool fortran,
                                  const QByteArray &bytes, Obj *callable, Obj *argsTuple)
{
    if (dtypeObj->kind != Kind::NumpyDType)
        return fail(QStringLiteral("a numpy array without a dtype"));
    const Extra &x = *dtypeObj->x;
    const std::optional<DType> dtype
        = x.numpySupported ? numpyToDType(x.numpyKind, x.numpySize) : std::nullopt;
    if (!dtype) {
        return inert(callable->x->module, callable->x->name, argsTuple,
                     QStringLiteral("a numpy array of dtype %1 is not supported; kept as an inert "
                                    "object")
                         .arg(numpyName(x)));
    }
    QList<qint64> shape;
    if (shapeObj->kind != Kind::Tuple && shapeObj->kind != Kind::List)
        return fail(QStringLiteral("a numpy array's shape is not a tuple"));
    qint64 count = 1;
    for (Obj *item : shapeObj->x->items) {
        if (!isInt(item) || item->value.toInt() < 0)
            return fail(QStringLiteral("a numpy array's shape is not a tuple of sizes"));
        shape.append(item->value.toInt());
        if (!checkedMul(count, item->value.toInt(), &count))
            return fail(QStringLiteral("a numpy array's shape overflows"));
    }
    qint64 byteCount = 0;
    if (!checkedMul(count, elementSize(*dtype), &byteCount) || byteCount != bytes.size()) {
        return fail(QStringLiteral("a numpy array of %1 elements of %2 holds %3 bytes")
                        .arg(count)
                        .arg(dtypeName(*dtype))
                        .arg(bytes.size()));
    }
    Tensor tensor = Tensor::fromBytes(*dtype, toLittleEndian(bytes, x.numpyOrder, *dtype), shape);
    if (fortran) {
        qint64 step = 1;
        for (qsizetype i = 0; i < shape.size(); ++i) {
            tensor.stride[i] = step;
            step *= std::max<qint64>(shape[i], 1);
        }
    }
    return leaf(Value(tensor));
}

Status Machine::numpyBuild(Obj *array, Obj *state)
{
    // ndarray.__setstate__((version, shape, dtype, is_fortran, data)) or without version.
    if (state->kind != Kind::Tuple)
        return fail(QStringLiteral("a numpy array's state is not a tuple"));
    std::vector<Obj *> items = state->x->items;
    if (items.size() == 5)
        items.erase(items.begin());
    if (items.size() != 4)
        return fail(
            QStringLiteral("a numpy array's state has %1 items").arg(state->x->items.size()));
    Obj *dtype = items[1];
    Result<Obj *> result = Error{};
    if (dtype->kind == Kind::NumpyDType && dtype->x->numpyKind == 'O') {
        result = inert(QStringLiteral("numpy"), QStringLiteral("ndarray"), state,
                       QStringLiteral("a numpy array of Python objects is not supported; kept as "
                                      "an inert object"));
    } else {
        Result<QByteArray> bytes = bytesOf(items[3], QStringLiteral("a numpy array's data"));
        if (!bytes)
            return bytes.error();
        Result<Obj *> reconstruct = global(QStringLiteral("numpy"), QStringLiteral("ndarray"));
        if (!reconstruct)
            return reconstruct.error();
        result = numpyArray(dtype, items[0], isInt(items[2]) && items[2]->value.toInt() != 0,
                            bytes.value(), reconstruct.value(), state);
    }
    if (!result)
        return result.error();
    // Turn the placeholder into the array in place: the memo and the stack hold it.
    Obj *made = result.value();
    array->kind = made->kind;
    array->value = made->value;
    array->conversion = made->conversion;
    array->x = std::move(made->x);
    return success();
}

} // namespace ifs::ckpt::detail::pickle
