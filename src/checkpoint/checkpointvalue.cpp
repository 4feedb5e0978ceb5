#include "checkpoint/checkpointvalue.h"

#include <QtEndian>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

namespace ifs::ckpt {

namespace {

struct DTypeInfo
{
    DType dtype;
    int size;
    const char16_t *name;
    const char16_t *storageClass;
    bool floating;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::Float32, 4, u"float32", u"FloatStorage", true},
    {DType::Float64, 8, u"float64", u"DoubleStorage", true},
    {DType::Float16, 2, u"float16", u"HalfStorage", true},
    {DType::BFloat16, 2, u"bfloat16", u"BFloat16Storage", true},
    {DType::Int8, 1, u"int8", u"CharStorage", false},
    {DType::Int16, 2, u"int16", u"ShortStorage", false},
    {DType::Int32, 4, u"int32", u"IntStorage", false},
    {DType::Int64, 8, u"int64", u"LongStorage", false},
    {DType::UInt8, 1, u"uint8", u"ByteStorage", false},
    {DType::Bool, 1, u"bool", u"BoolStorage", false},
    {DType::Complex64, 8, u"complex64", u"ComplexFloatStorage", true},
    {DType::Complex128, 16, u"complex128", u"ComplexDoubleStorage", true},
};

const DTypeInfo &info(DType dtype)
{
    const auto index = std::size_t(dtype);
    return index < std::size(kDTypes) ? kDTypes[index] : kDTypes[0];
}

bool checkedMul(qint64 a, qint64 b, qint64 *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

bool checkedAdd(qint64 a, qint64 b, qint64 *out)
{
    return !__builtin_add_overflow(a, b, out);
}

QString listText(const QList<qint64> &values)
{
    QString text = QStringLiteral("[");
    for (qsizetype i = 0; i < values.size(); ++i) {
        if (i > 0)
            text += u", ";
        text += QString::number(values[i]);
    }
    return text + u']';
}

} // namespace

int elementSize(DType dtype)
{
    return info(dtype).size;
}

QString dtypeName(DType dtype)
{
    return QString::fromUtf16(info(dtype).name);
}

QString storageClassName(DType dtype)
{
    return QString::fromUtf16(info(dtype).storageClass);
}

std::optional<DType> dtypeFromName(QStringView name)
{
    for (const DTypeInfo &entry : kDTypes) {
        if (name == QStringView(entry.name))
            return entry.dtype;
    }
    static constexpr std::pair<const char16_t *, DType> kAliases[] = {
        {u"float", DType::Float32},    {u"double", DType::Float64},     {u"half", DType::Float16},
        {u"short", DType::Int16},      {u"int", DType::Int32},          {u"long", DType::Int64},
        {u"cfloat", DType::Complex64}, {u"cdouble", DType::Complex128},
    };
    for (const auto &[alias, dtype] : kAliases) {
        if (name == QStringView(alias))
            return dtype;
    }
    return std::nullopt;
}

std::optional<DType> dtypeFromStorageClass(QStringView className)
{
    for (const DTypeInfo &entry : kDTypes) {
        if (className == QStringView(entry.storageClass))
            return entry.dtype;
    }
    return std::nullopt;
}

bool isFloatingPoint(DType dtype)
{
    return info(dtype).floating;
}

// --- Storage, Tensor ---------------------------------------------------------------------------

qint64 Storage::byteCount() const
{
    return source ? source->size() : bytes.size();
}

qint64 Storage::numel() const
{
    return byteCount() / elementSize(dtype);
}

Result<QByteArray> Storage::data() const
{
    return source ? source->load() : Result<QByteArray>(bytes);
}

Status Storage::visitBytes(qint64 offset, qint64 length, const ByteVisitor &visit) const
{
    if (offset < 0 || length < 0 || offset > byteCount() || length > byteCount() - offset)
        return Error{QStringLiteral("bytes %1 to %2 lie outside a storage of %3 bytes")
                         .arg(offset)
                         .arg(offset + length)
                         .arg(byteCount())};
    if (source)
        return source->visit(offset, length, visit);
    // In memory: one piece, as nothing is saved by cutting it up.
    if (length > 0)
        visit(bytes.constData() + offset, length);
    return success();
}

DType Tensor::dtype() const
{
    return storage ? storage->dtype : DType::Float32;
}

QString Tensor::device() const
{
    return storage ? storage->device : QStringLiteral("cpu");
}

qint64 Tensor::numel() const
{
    qint64 count = 1;
    for (const qint64 size : shape) {
        if (size <= 0)
            return 0;
        if (!checkedMul(count, size, &count))
            return std::numeric_limits<qint64>::max();
    }
    return count;
}

qint64 Tensor::byteSize() const
{
    qint64 bytes = 0;
    return checkedMul(numel(), elementSize(dtype()), &bytes) ? bytes
                                                             : std::numeric_limits<qint64>::max();
}

bool Tensor::isContiguous() const
{
    if (stride.size() != shape.size())
        return false;
    if (numel() == 0)
        return true;
    qint64 expected = 1;
    for (qsizetype i = shape.size() - 1; i >= 0; --i) {
        if (shape[i] == 1)
            continue;
        if (stride[i] != expected)
            return false;
        expected *= shape[i];
    }
    return true;
}

Status Tensor::checkLayout() const
{
    if (!storage)
        return Error{QStringLiteral("the tensor has no storage")};
    const DType type = storage->dtype;
    const int itemSize = elementSize(type);
    if (storage->byteCount() % itemSize != 0) {
        return Error{QStringLiteral("its storage of %1 bytes is not a whole number of %2 elements "
                                    "(%3 bytes each)")
                         .arg(storage->byteCount())
                         .arg(dtypeName(type))
                         .arg(itemSize)};
    }
    if (shape.size() != stride.size()) {
        return Error{QStringLiteral("the shape %1 has %2 dimensions but the stride %3 has %4")
                         .arg(listText(shape))
                         .arg(shape.size())
                         .arg(listText(stride))
                         .arg(stride.size())};
    }
    for (const qint64 size : shape) {
        if (size < 0)
            return Error{QStringLiteral("negative size in the shape %1").arg(listText(shape))};
    }
    for (const qint64 step : stride) {
        if (step < 0)
            return Error{QStringLiteral("negative stride in %1").arg(listText(stride))};
    }
    if (offset < 0)
        return Error{QStringLiteral("negative storage offset %1").arg(offset)};
    if (requiresGrad && !isFloatingPoint(type)) {
        return Error{QStringLiteral("only floating point and complex tensors can require "
                                    "gradients, not %1")
                         .arg(dtypeName(type))};
    }

    qint64 count = 1;
    qint64 lastElement = offset; // index of the view's last element in the storage
    bool overflow = false;
    for (qsizetype i = 0; i < shape.size(); ++i) {
        qint64 reach = 0;
        overflow = overflow || !checkedMul(count, shape[i], &count)
            || (shape[i] > 0 && !checkedMul(shape[i] - 1, stride[i], &reach))
            || !checkedAdd(lastElement, reach, &lastElement);
    }
    qint64 byteCount = 0;
    if (overflow || !checkedMul(count, itemSize, &byteCount))
        return Error{QStringLiteral("the shape %1 overflows").arg(listText(shape))};
    if (count == 0)
        return success(); // torch accepts any storage for a view without elements
    const qint64 available = storage->numel();
    if (lastElement >= available) {
        return Error{QStringLiteral("its storage holds %1 %2 elements, the view %3 with stride "
                                    "%4 at offset %5 needs %6")
                         .arg(available)
                         .arg(dtypeName(type))
                         .arg(listText(shape))
                         .arg(listText(stride))
                         .arg(offset)
                         .arg(lastElement + 1)};
    }
    return success();
}

Result<QByteArray> Tensor::contiguousBytes() const
{
    if (Status layout = checkLayout(); !layout)
        return layout.error();
    const qint64 count = numel();
    const int itemSize = elementSize(dtype());
    if (count == 0)
        return QByteArray();
    const Result<QByteArray> data = storage->data();
    if (!data)
        return data.error();
    const char *source = data->constData();
    if (isContiguous())
        return QByteArray(source + offset * itemSize, count * itemSize);

    QByteArray out(count * itemSize, Qt::Uninitialized);
    char *target = out.data();
    const int dims = dim();
    // Walk every index but the innermost with an odometer; copy the innermost run in one go when
    // its elements are adjacent.
    const qint64 inner = shape[dims - 1];
    const qint64 innerStride = stride[dims - 1];
    QList<qint64> index(dims, 0);
    qint64 position = offset;
    for (qint64 done = 0; done < count; done += inner) {
        if (innerStride == 1) {
            std::memcpy(target, source + position * itemSize, std::size_t(inner * itemSize));
            target += inner * itemSize;
        } else {
            for (qint64 i = 0; i < inner; ++i) {
                std::memcpy(target, source + (position + i * innerStride) * itemSize,
                            std::size_t(itemSize));
                target += itemSize;
            }
        }
        for (int d = dims - 2; d >= 0; --d) {
            position += stride[d];
            if (++index[d] < shape[d])
                break;
            position -= stride[d] * shape[d];
            index[d] = 0;
        }
    }
    return out;
}

Tensor Tensor::view(qint64 viewOffset, QList<qint64> viewShape, QList<qint64> viewStride) const
{
    Tensor result;
    result.storage = storage;
    result.offset = viewOffset;
    result.shape = std::move(viewShape);
    result.stride = std::move(viewStride);
    return result;
}

Tensor Tensor::asParameter(bool grad) const
{
    Tensor result = *this;
    result.parameter = true;
    result.requiresGrad = grad;
    return result;
}

QList<qint64> Tensor::contiguousStrides(const QList<qint64> &shape)
{
    QList<qint64> strides(shape.size(), 1);
    qint64 step = 1;
    for (qsizetype i = shape.size() - 1; i >= 0; --i) {
        strides[i] = step;
        step *= std::max<qint64>(shape[i], 1);
    }
    return strides;
}

Tensor Tensor::fromBytes(DType dtype, QByteArray bytes, QList<qint64> shape)
{
    Tensor tensor;
    tensor.storage = std::make_shared<Storage>();
    tensor.storage->dtype = dtype;
    tensor.storage->bytes = std::move(bytes);
    tensor.stride = contiguousStrides(shape);
    tensor.shape = std::move(shape);
    return tensor;
}

Tensor Tensor::fromFloats(std::span<const float> values, QList<qint64> shape)
{
    QByteArray bytes(qsizetype(values.size_bytes()), Qt::Uninitialized);
    if constexpr (std::endian::native == std::endian::little) {
        if (!values.empty())
            std::memcpy(bytes.data(), values.data(), values.size_bytes());
    } else {
        for (std::size_t i = 0; i < values.size(); ++i)
            qToLittleEndian(values[i], bytes.data() + i * sizeof(float));
    }
    return fromBytes(DType::Float32, std::move(bytes), std::move(shape));
}

Tensor Tensor::zeros(DType dtype, QList<qint64> shape)
{
    Tensor tensor;
    tensor.shape = std::move(shape);
    const qint64 count = tensor.numel();
    return fromBytes(dtype, QByteArray(count * elementSize(dtype), '\0'), tensor.shape);
}

// --- Value -------------------------------------------------------------------------------------

struct Value::Data : QSharedData
{
    explicit Data(Kind k)
        : kind(k)
    { }

    Kind kind = Kind::None;
    bool boolean = false;
    qint64 integer = 0;
    double real = 0;
    DType dtype = DType::Float32;
    QString text; // String, Device, Object's module
    QString name; // Object's class name
    QByteArray bytes;
    QList<Value> items;
    Entries entries;
    Tensor tensor;
    QList<qint64> sizes;
    Value args;
    Value state;
};

Value::Value() = default;
Value::Value(std::nullptr_t)
{ }
Value::Value(Data *data)
    : d(data)
{ }
Value::Value(const Value &other) = default;
Value::Value(Value &&other) noexcept = default;
Value &Value::operator=(const Value &other) = default;
Value &Value::operator=(Value &&other) noexcept = default;
Value::~Value() = default;

Value::Value(bool value)
    : d(new Data(Kind::Bool))
{
    d->boolean = value;
}

Value::Value(double value)
    : d(new Data(Kind::Float))
{
    d->real = value;
}

Value::Value(const char *utf8)
    : Value(QString::fromUtf8(utf8))
{ }

Value::Value(const QString &text)
    : d(new Data(Kind::String))
{
    d->text = text;
}

Value::Value(const Tensor &tensor)
    : d(new Data(Kind::Tensor))
{
    d->tensor = tensor;
}

Value Value::fromInt(qint64 value)
{
    Data *data = new Data(Kind::Int);
    data->integer = value;
    return Value(data);
}

Value Value::bytes(QByteArray bytes)
{
    Data *data = new Data(Kind::Bytes);
    data->bytes = std::move(bytes);
    return Value(data);
}

Value Value::tuple(QList<Value> items)
{
    Data *data = new Data(Kind::Tuple);
    data->items = std::move(items);
    return Value(data);
}

Value Value::list(QList<Value> items)
{
    Data *data = new Data(Kind::List);
    data->items = std::move(items);
    return Value(data);
}

Value Value::dict(Entries entries)
{
    Data *data = new Data(Kind::Dict);
    data->entries = std::move(entries);
    return Value(data);
}

Value Value::orderedDict(Entries entries, Value state)
{
    Data *data = new Data(Kind::OrderedDict);
    data->entries = std::move(entries);
    data->state = std::move(state);
    return Value(data);
}

Value Value::device(const QString &device)
{
    Data *data = new Data(Kind::Device);
    data->text = device;
    return Value(data);
}

Value Value::size(QList<qint64> sizes)
{
    Data *data = new Data(Kind::Size);
    data->sizes = std::move(sizes);
    return Value(data);
}

Value Value::dtype(DType dtype)
{
    Data *data = new Data(Kind::DType);
    data->dtype = dtype;
    return Value(data);
}

Value Value::object(const QString &module, const QString &name, Value args, Value state)
{
    Data *data = new Data(Kind::Object);
    data->text = module;
    data->name = name;
    data->args = std::move(args);
    data->state = std::move(state);
    return Value(data);
}

Value::Kind Value::kind() const
{
    return d ? d->kind : Kind::None;
}

QString Value::typeName() const
{
    switch (kind()) {
    case Kind::None:
        return QStringLiteral("NoneType");
    case Kind::Bool:
        return QStringLiteral("bool");
    case Kind::Int:
        return QStringLiteral("int");
    case Kind::Float:
        return QStringLiteral("float");
    case Kind::String:
        return QStringLiteral("str");
    case Kind::Bytes:
        return QStringLiteral("bytes");
    case Kind::Tuple:
        return QStringLiteral("tuple");
    case Kind::List:
        return QStringLiteral("list");
    case Kind::Dict:
        return QStringLiteral("dict");
    case Kind::OrderedDict:
        return QStringLiteral("collections.OrderedDict");
    case Kind::Tensor:
        return d->tensor.parameter ? QStringLiteral("torch.nn.Parameter")
                                   : QStringLiteral("torch.Tensor");
    case Kind::Device:
        return QStringLiteral("torch.device");
    case Kind::Size:
        return QStringLiteral("torch.Size");
    case Kind::DType:
        return QStringLiteral("torch.dtype");
    case Kind::Object:
        return d->text + u'.' + d->name;
    }
    return QString();
}

bool Value::toBool() const
{
    return kind() == Kind::Bool && d->boolean;
}

qint64 Value::toInt() const
{
    switch (kind()) {
    case Kind::Int:
        return d->integer;
    case Kind::Bool:
        return d->boolean ? 1 : 0;
    default:
        return 0;
    }
}

double Value::toDouble() const
{
    switch (kind()) {
    case Kind::Float:
        return d->real;
    case Kind::Int:
        return double(d->integer);
    case Kind::Bool:
        return d->boolean ? 1.0 : 0.0;
    default:
        return 0.0;
    }
}

QString Value::toString() const
{
    return kind() == Kind::String || kind() == Kind::Device ? d->text : QString();
}

QByteArray Value::toBytes() const
{
    return kind() == Kind::Bytes ? d->bytes : QByteArray();
}

Tensor Value::toTensor() const
{
    return kind() == Kind::Tensor ? d->tensor : Tensor();
}

QList<qint64> Value::toSize() const
{
    return kind() == Kind::Size ? d->sizes : QList<qint64>();
}

DType Value::toDType() const
{
    return kind() == Kind::DType ? d->dtype : DType::Float32;
}

QString Value::objectModule() const
{
    return kind() == Kind::Object ? d->text : QString();
}

QString Value::objectName() const
{
    return kind() == Kind::Object ? d->name : QString();
}

Value Value::objectArgs() const
{
    return kind() == Kind::Object ? d->args : Value();
}

const QList<Value> &Value::items() const
{
    static const QList<Value> kNoItems;
    return kind() == Kind::Tuple || kind() == Kind::List ? d->items : kNoItems;
}

const Value::Entries &Value::entries() const
{
    static const Entries kNoEntries;
    return isDict() ? d->entries : kNoEntries;
}

qsizetype Value::size() const
{
    switch (kind()) {
    case Kind::Tuple:
    case Kind::List:
        return d->items.size();
    case Kind::Dict:
    case Kind::OrderedDict:
        return d->entries.size();
    default:
        return 0;
    }
}

Value Value::at(qsizetype index) const
{
    const QList<Value> &list = items();
    return index >= 0 && index < list.size() ? list[index] : Value();
}

const Value *Value::find(QStringView key) const
{
    for (const Entry &entry : entries()) {
        if (entry.first.kind() == Kind::String && entry.first.d->text == key)
            return &entry.second;
    }
    return nullptr;
}

const Value *Value::find(qint64 key) const
{
    for (const Entry &entry : entries()) {
        const Kind keyKind = entry.first.kind();
        if ((keyKind == Kind::Int || keyKind == Kind::Bool) && entry.first.toInt() == key)
            return &entry.second;
    }
    return nullptr;
}

Value Value::value(QStringView key) const
{
    const Value *found = find(key);
    return found ? *found : Value();
}

Value Value::state() const
{
    return kind() == Kind::OrderedDict || kind() == Kind::Object ? d->state : Value();
}

void Value::append(const Value &item)
{
    if (kind() == Kind::Tuple || kind() == Kind::List)
        d->items.append(item);
}

void Value::insert(const Value &key, const Value &value)
{
    if (!isDict())
        return;
    for (Entry &entry : d->entries) {
        if (sameKey(entry.first, key)) {
            entry.second = value;
            return;
        }
    }
    d->entries.append({key, value});
}

void Value::setState(const Value &state)
{
    if (kind() == Kind::OrderedDict || kind() == Kind::Object)
        d->state = state;
}

namespace {

bool isNumber(Value::Kind kind)
{
    return kind == Value::Kind::Bool || kind == Value::Kind::Int || kind == Value::Kind::Float;
}

/// Python's numeric equality without rounding: 2**53 + 1 != 2.0**53.
bool numbersEqual(const Value &a, const Value &b)
{
    if (a.kind() != Value::Kind::Float && b.kind() != Value::Kind::Float)
        return a.toInt() == b.toInt();
    if (a.kind() == Value::Kind::Float && b.kind() == Value::Kind::Float)
        return a.toDouble() == b.toDouble();
    const Value &real = a.kind() == Value::Kind::Float ? a : b;
    const Value &integer = a.kind() == Value::Kind::Float ? b : a;
    const double x = real.toDouble();
    // 2^63 is exactly representable; anything at or past it cannot equal an int64.
    if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0) || std::trunc(x) != x)
        return false;
    return qint64(x) == integer.toInt();
}

bool sameLayout(const Tensor &a, const Tensor &b)
{
    return a.offset == b.offset && a.shape == b.shape && a.stride == b.stride
        && a.requiresGrad == b.requiresGrad && a.parameter == b.parameter;
}

bool tensorsEqual(const Tensor &a, const Tensor &b)
{
    if (!sameLayout(a, b) || bool(a.storage) != bool(b.storage))
        return false;
    if (!a.storage || a.storage == b.storage)
        return true;
    if (a.storage->dtype != b.storage->dtype || a.storage->device != b.storage->device
        || a.storage->byteCount() != b.storage->byteCount()) {
        return false;
    }
    // Data that cannot be read (a file changed under an on-demand read) equals nothing.
    const Result<QByteArray> bytesA = a.storage->data();
    const Result<QByteArray> bytesB = b.storage->data();
    return bytesA && bytesB && bytesA.value() == bytesB.value();
}

} // namespace

bool operator==(const Value &a, const Value &b)
{
    const Value::Kind kind = a.kind();
    if (isNumber(kind) && isNumber(b.kind()))
        return numbersEqual(a, b);
    if (kind != b.kind())
        return false;
    if (a.d == b.d)
        return true;
    switch (kind) {
    case Value::Kind::None:
        return true;
    case Value::Kind::Bool:
    case Value::Kind::Int:
    case Value::Kind::Float:
        return numbersEqual(a, b);
    case Value::Kind::String:
    case Value::Kind::Device:
        return a.d->text == b.d->text;
    case Value::Kind::Bytes:
        return a.d->bytes == b.d->bytes;
    case Value::Kind::Tuple:
    case Value::Kind::List:
        return a.d->items == b.d->items;
    case Value::Kind::Dict:
    case Value::Kind::OrderedDict:
        return a.d->entries == b.d->entries && a.d->state == b.d->state;
    case Value::Kind::Tensor:
        return tensorsEqual(a.d->tensor, b.d->tensor);
    case Value::Kind::Size:
        return a.d->sizes == b.d->sizes;
    case Value::Kind::DType:
        return a.d->dtype == b.d->dtype;
    case Value::Kind::Object:
        return a.d->text == b.d->text && a.d->name == b.d->name && a.d->args == b.d->args
            && a.d->state == b.d->state;
    }
    return false;
}

bool Value::sameKey(const Value &a, const Value &b)
{
    if (a.kind() == Kind::Tensor && b.kind() == Kind::Tensor) {
        const Tensor &x = a.d->tensor;
        const Tensor &y = b.d->tensor;
        return x.storage == y.storage && sameLayout(x, y);
    }
    if (a.kind() == Kind::Tuple && b.kind() == Kind::Tuple) {
        const QList<Value> &x = a.d->items;
        const QList<Value> &y = b.d->items;
        if (x.size() != y.size())
            return false;
        for (qsizetype i = 0; i < x.size(); ++i) {
            if (!sameKey(x[i], y[i]))
                return false;
        }
        return true;
    }
    return a == b;
}

} // namespace ifs::ckpt
