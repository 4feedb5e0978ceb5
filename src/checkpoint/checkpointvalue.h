#pragma once

#include "base/result.h"

#include <QByteArray>
#include <QList>
#include <QSharedDataPointer>
#include <QString>
#include <QStringBuilder>
#include <QStringView>

#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>

/// The in-memory model of what a PyTorch checkpoint holds. The writer (checkpointwriter.h) writes
/// it; readers of zip, legacy, TorchScript and safetensors files produce it. No libtorch here, so
/// that the CLI and the GUI can inspect, edit and write checkpoints without loading torch.
namespace ifs::ckpt {

/// The element type of a storage, as torch names it. The enumerator order is ours; files carry
/// the names (dtypeName(), storageClassName()).
enum class DType : quint8 {
    Float32,
    Float64,
    Float16,
    BFloat16,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    Bool,
    Complex64,
    Complex128,
};

/// Every DType, in enumerator order.
inline constexpr DType kAllDTypes[] = {
    DType::Float32, DType::Float64, DType::Float16,   DType::BFloat16,
    DType::Int8,    DType::Int16,   DType::Int32,     DType::Int64,
    DType::UInt8,   DType::Bool,    DType::Complex64, DType::Complex128,
};

/// Bytes per element: 4 for Float32, 2 for BFloat16, 1 for Bool, 16 for Complex128.
int elementSize(DType dtype);
/// The Python spelling without "torch.": "float32", "bfloat16", "complex64", "bool".
QString dtypeName(DType dtype);
/// The legacy storage class that pickles name (as `torch.<name>`): "FloatStorage",
/// "BFloat16Storage", "ComplexDoubleStorage".
QString storageClassName(DType dtype);
/// Inverse of dtypeName(); also accepts torch's aliases ("float", "half", "long", "cfloat", ...).
std::optional<DType> dtypeFromName(QStringView name);
/// Inverse of storageClassName().
std::optional<DType> dtypeFromStorageClass(QStringView className);
/// Whether tensors of this type may require grad: floating point and complex types.
bool isFloatingPoint(DType dtype);

/// Receives a storage's bytes piece by piece (StorageSource::visit, Storage::visitBytes): `size`
/// bytes at `data`, valid during the call. Returns false to stop early (a cancelled job).
using ByteVisitor = std::function<bool(const char *data, qint64 size)>;

/// Tensor data a reader left in the file (ReadOptions::TensorData::OnDemand): read, inflated and
/// checked when first asked for, so that a file's structure costs no tensor memory. Readers
/// implement it; methods are thread-safe. Errors name the file and the reason ("Cannot read
/// checkpoint “a.pt”: the file changed while it was being read ...").
class StorageSource
{
public:
    virtual ~StorageSource() = default;
    /// The bytes the storage holds once loaded.
    virtual qint64 size() const = 0;
    /// The bytes, read on the first call and kept for the next ones. A failed load is not kept.
    virtual Result<QByteArray> load() const = 0;
    /// Calls `visit` on the bytes [offset, offset + length) in order, in pieces of a few MiB that
    /// hold whole elements of any dtype (multiples of 16 bytes but the last), without keeping
    /// them: a pass over a storage of any size in bounded memory. From the kept bytes once
    /// loaded. Reading the whole range also checks the data as load() does (its CRC-32).
    virtual Status visit(qint64 offset, qint64 length, const ByteVisitor &visit) const = 0;
};

/// One block of tensor memory: what torch.save writes as one `data/<key>` record. Held by
/// std::shared_ptr so that tensors can share it (views, tied weights) and a file holds it once.
struct Storage
{
    DType dtype = DType::Float32;
    /// The raw elements, little-endian; its size is a multiple of elementSize(dtype). Wrap memory
    /// you own with QByteArray::fromRawData() to write it without a copy. Empty while `source`
    /// holds the data: read the bytes with data() or visitBytes(), which work for both.
    QByteArray bytes;
    /// torch's location tag, where torch.load puts the storage unless given a map_location:
    /// "cpu", "cuda", "cuda:0", "mps".
    QString device = QStringLiteral("cpu");
    /// Keeps the memory that `bytes` points into alive when `bytes` wraps memory it does not own
    /// (QByteArray::fromRawData): the buffer the reader read a checkpoint file into. Copies of
    /// `bytes` made with QByteArray's copy constructor share that memory too: detach them (or keep
    /// this Storage alive) before they outlive it.
    std::shared_ptr<const void> keepAlive;
    /// Where the bytes are while a reader has not read them (ReadOptions::TensorData::OnDemand);
    /// null when `bytes` holds them.
    std::shared_ptr<const StorageSource> source;

    /// The size of the data in bytes: of `bytes`, or of what `source` will load.
    qint64 byteCount() const;
    /// Whole elements held by the data.
    qint64 numel() const;
    /// The data: `bytes`, or what `source` loads (on the first call; kept by the source). The
    /// error of a load that failed: the file changed or is damaged, or a zip bomb's budget.
    Result<QByteArray> data() const;
    /// Calls `visit` on the data [offset, offset + length) in pieces (StorageSource::visit), from
    /// `bytes` at once or streamed from `source` without loading it whole. The range must lie
    /// within byteCount().
    Status visitBytes(qint64 offset, qint64 length, const ByteVisitor &visit) const;
};

using StoragePtr = std::shared_ptr<Storage>;

/// A strided view of a Storage, as torch's `_rebuild_tensor_v2` describes it. A plain struct: fill
/// it directly or use the factories. Layouts are checked by checkLayout() (the writer does so).
struct Tensor
{
    StoragePtr storage;
    qint64 offset = 0; ///< in elements, from the start of the storage
    QList<qint64> shape; ///< empty for a 0-dim tensor (a scalar)
    QList<qint64> stride; ///< in elements, one per dimension; 0 for a broadcast dimension
    bool requiresGrad = false;
    bool parameter = false; ///< a torch.nn.Parameter rather than a plain tensor

    /// The storage's element type; Float32 without a storage.
    DType dtype() const;
    /// The storage's location tag; "cpu" without a storage.
    QString device() const;
    int dim() const { return int(shape.size()); }
    /// Elements of the view (1 for a 0-dim tensor); 0 when a dimension is 0 or negative.
    qint64 numel() const;
    /// numel() × elementSize(): what contiguousBytes() returns.
    qint64 byteSize() const;
    /// Whether the strides are the row-major ones for the shape (size-1 dimensions ignored).
    bool isContiguous() const;

    /// Whether the view fits its storage: storage present, one stride per dimension, no negative
    /// size, stride or offset, every element inside the storage, no size overflow, and
    /// requiresGrad only on floating point types. The error says what is wrong, e.g.
    /// "storage holds 5 float32 elements, the view needs 6".
    Status checkLayout() const;

    /// The elements of the view in row-major order (a copy), or checkLayout()'s error.
    Result<QByteArray> contiguousBytes() const;

    /// Another view of the same storage.
    Tensor view(qint64 offset, QList<qint64> shape, QList<qint64> stride) const;
    /// The same tensor as a torch.nn.Parameter.
    Tensor asParameter(bool requiresGrad = true) const;

    /// Row-major strides for a shape: {3, 4} → {4, 1}.
    static QList<qint64> contiguousStrides(const QList<qint64> &shape);
    /// A contiguous tensor on a new CPU storage that holds `bytes` (raw little-endian elements).
    /// The shape must match the size of `bytes` (checkLayout() tells otherwise).
    static Tensor fromBytes(DType dtype, QByteArray bytes, QList<qint64> shape);
    /// A contiguous float32 tensor with a copy of `values`.
    static Tensor fromFloats(std::span<const float> values, QList<qint64> shape);
    /// A contiguous tensor of zeros.
    static Tensor zeros(DType dtype, QList<qint64> shape);
};

namespace detail {
template<typename T>
concept IntegerArgument
    = std::integral<T> && !std::same_as<
          T,
          bool> && !std::same_as<T, char> && !std::same_as<T, char8_t> && !std::same_as<T, char16_t> && !std::same_as<T, char32_t> && !std::same_as<T, wchar_t> && (std::is_signed_v<T> || sizeof(T) < sizeof(qint64));
} // namespace detail

/// One Python value of a checkpoint: what `torch.load` returns, as a tree. Immutable data shared
/// between copies (copying is a reference-count increment); the mutators detach.
///
/// Build values in C++ with the constructors and factories:
///
///     Value::dict({{"epoch", 3}, {"model", Value::orderedDict({{"fc.weight", weight}})}})
///
/// Accessors never throw: the wrong kind gives a default (0, "", an empty list, None).
class Value
{
public:
    enum class Kind : quint8 {
        None,
        Bool,
        Int, ///< a Python int within int64
        Float, ///< a Python float (double)
        String, ///< a Python str
        Bytes, ///< a Python bytes
        Tuple,
        List,
        Dict, ///< a dict: ordered entries, keys of any hashable kind (str, int, ...)
        OrderedDict, ///< a collections.OrderedDict (every model.state_dict())
        Tensor, ///< a torch.Tensor or torch.nn.Parameter
        Device, ///< a torch.device
        Size, ///< a torch.Size
        DType, ///< a torch.dtype such as torch.float32
        Object, ///< an instance of another class: module, name, args, state (readers only)
    };
    /// One key/value pair of a Dict or OrderedDict.
    using Entry = std::pair<Value, Value>;
    using Entries = QList<Entry>;

    /// None.
    Value();
    Value(std::nullptr_t);
    Value(bool value);
    template<detail::IntegerArgument T>
    Value(T value)
        : Value(fromInt(qint64(value)))
    { }
    Value(double value);
    /// A str from UTF-8.
    Value(const char *utf8);
    Value(const QString &text);
    /// A str from a concatenation (`prefix + u"weight"` under QT_USE_QSTRINGBUILDER).
    template<typename A, typename B>
    Value(const QStringBuilder<A, B> &text)
        : Value(QString(text))
    { }
    Value(const Tensor &tensor);
    /// Pointers other than const char * would silently become bools.
    template<typename T>
    Value(T *) = delete;

    Value(const Value &other);
    Value(Value &&other) noexcept;
    Value &operator=(const Value &other);
    Value &operator=(Value &&other) noexcept;
    ~Value();

    static Value fromInt(qint64 value);
    static Value bytes(QByteArray data);
    static Value tuple(QList<Value> items = {});
    static Value list(QList<Value> items = {});
    static Value dict(Entries entries = {});
    /// A collections.OrderedDict; `state` holds its attributes, if any (a Dict such as
    /// `{'_metadata': ...}`, which model.state_dict() sets), written with pickle's BUILD.
    static Value orderedDict(Entries entries = {}, Value state = {});
    /// A torch.device from its string: "cpu", "cuda", "cuda:0".
    static Value device(const QString &device);
    static Value size(QList<qint64> sizes);
    static Value dtype(DType dtype);
    /// An object of another class (`module.name`), built from `args` (a Tuple, or None when the
    /// pickle names the class without calling it) and `state` (from BUILD, None without one).
    /// Readers produce these; the writer refuses them.
    static Value object(const QString &module, const QString &name, Value args = {},
                        Value state = {});

    Kind kind() const;
    bool isNone() const { return kind() == Kind::None; }
    bool isBool() const { return kind() == Kind::Bool; }
    bool isInt() const { return kind() == Kind::Int; }
    bool isFloat() const { return kind() == Kind::Float; }
    bool isString() const { return kind() == Kind::String; }
    bool isBytes() const { return kind() == Kind::Bytes; }
    bool isTuple() const { return kind() == Kind::Tuple; }
    bool isList() const { return kind() == Kind::List; }
    /// A Dict or an OrderedDict.
    bool isDict() const { return kind() == Kind::Dict || kind() == Kind::OrderedDict; }
    bool isOrderedDict() const { return kind() == Kind::OrderedDict; }
    bool isTensor() const { return kind() == Kind::Tensor; }
    bool isDevice() const { return kind() == Kind::Device; }
    bool isSize() const { return kind() == Kind::Size; }
    bool isDType() const { return kind() == Kind::DType; }
    bool isObject() const { return kind() == Kind::Object; }

    /// Python's name of the type: "int", "str", "dict", "collections.OrderedDict",
    /// "torch.Tensor", "torch.nn.Parameter", "torch.device", or an Object's "module.name".
    QString typeName() const;

    bool toBool() const;
    /// An Int, or a Bool as 0/1.
    qint64 toInt() const;
    /// A Float, or an Int or Bool converted.
    double toDouble() const;
    /// A String's text; a Device's string ("cuda:0").
    QString toString() const;
    QByteArray toBytes() const;
    Tensor toTensor() const;
    /// A Size's sizes.
    QList<qint64> toSize() const;
    DType toDType() const;
    /// An Object's module and class name.
    QString objectModule() const;
    QString objectName() const;
    /// An Object's constructor arguments (a Tuple, or None).
    Value objectArgs() const;

    /// The items of a Tuple or List.
    const QList<Value> &items() const;
    /// The entries of a Dict or OrderedDict, in order.
    const Entries &entries() const;
    /// Items of a Tuple or List, entries of a Dict; 0 for other kinds.
    qsizetype size() const;
    /// Item `index` of a Tuple or List; None when out of range.
    Value at(qsizetype index) const;
    /// The value for a str key of a Dict; nullptr when absent. Linear in the size.
    const Value *find(QStringView key) const;
    /// The value for an int key of a Dict (optimizer state); nullptr when absent.
    const Value *find(qint64 key) const;
    /// The value for a str key; None when absent.
    Value value(QStringView key) const;
    bool contains(QStringView key) const { return find(key) != nullptr; }
    /// The BUILD state of an OrderedDict (its attributes) or of an Object; None when unset.
    Value state() const;

    /// Appends to a Tuple or List; does nothing to other kinds.
    void append(const Value &item);
    /// Sets `key` in a Dict or OrderedDict: replaces the value of an equal key (Python's equality:
    /// 1 == True) in place, otherwise appends. Does nothing to other kinds. Linear in the size;
    /// build large dicts with dict(entries).
    void insert(const Value &key, const Value &value);
    /// Sets the BUILD state of an OrderedDict or Object.
    void setState(const Value &state);

    /// Deep equality. Tensors compare by dtype, layout, flags, device and storage bytes, not by
    /// storage identity. Python's numeric equality applies (1 == 1.0 == True); NaN != NaN.
    friend bool operator==(const Value &a, const Value &b);

    /// Equality of dict keys: as operator== but tensors compare by identity (Python hashes them by
    /// id): the same storage, offset, shape and stride.
    static bool sameKey(const Value &a, const Value &b);

private:
    struct Data;
    explicit Value(Data *data);
    Data *detach();

    QSharedDataPointer<Data> d;
};

} // namespace ifs::ckpt
