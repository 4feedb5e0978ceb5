#include "datasets/imagedetailspanel.h"

#include "base/filenames.h"

#include <QAction>
#include <QClipboard>
#include <QDesktopServices>
#include <QDir>
#include <QFileInfo>
#include <QFormLayout>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QPainter>
#include <QStackedLayout>
#include <QToolButton>
#include <QUrl>
#include <QVBoxLayout>

#include <exception>

namespace ifs {

namespace {

QString dash()
{
    return QStringLiteral("—");
}

} // namespace

/// The image scaled to fit, keeping its aspect ratio, or a state message in its place.
class ImageDetailsPanel::Preview : public QWidget
{
public:
    explicit Preview(QWidget *parent)
        : QWidget(parent)
    {
        setMinimumSize(160, 120);
        setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
    }

    void setImage(const QImage &image)
    {
        m_pixmap = QPixmap::fromImage(image);
        m_scaled = {};
        m_message.clear();
        m_error = false;
        setToolTip({});
        update();
    }

    void setMessage(const QString &message, bool error)
    {
        m_pixmap = {};
        m_scaled = {};
        m_message = message;
        m_error = error;
        setToolTip(error ? message : QString()); // the whole message, should it not fit
        update();
    }

    QString message() const { return m_message; }
    bool hasImage() const { return !m_pixmap.isNull(); }

protected:
    void resizeEvent(QResizeEvent *) override { m_scaled = {}; }

    void paintEvent(QPaintEvent *) override
    {
        QPainter painter(this);
        const QRect area = rect().adjusted(1, 1, -1, -1);
        if (!m_pixmap.isNull()) {
            const qreal dpr = devicePixelRatioF();
            const QSize fitted = m_pixmap.size().scaled(area.size(), Qt::KeepAspectRatio);
            const QSize device = fitted * dpr;
            if (m_scaled.size() != device) {
                // Enlarged small images keep hard pixel edges: that is what the network sees.
                const bool enlarge = device.width() >= 2 * m_pixmap.width();
                m_scaled
                    = m_pixmap.scaled(device, Qt::IgnoreAspectRatio,
                                      enlarge ? Qt::FastTransformation : Qt::SmoothTransformation);
                m_scaled.setDevicePixelRatio(dpr);
            }
            const QRect target(area.x() + (area.width() - fitted.width()) / 2,
                               area.y() + (area.height() - fitted.height()) / 2, fitted.width(),
                               fitted.height());
            painter.drawPixmap(target.topLeft(), m_scaled);
            QColor frame = palette().color(QPalette::Text);
            frame.setAlpha(40);
            painter.setPen(frame);
            painter.drawRect(target.adjusted(0, 0, -1, -1));
            return;
        }

        painter.setRenderHint(QPainter::Antialiasing);
        QColor box = m_error ? QColor(210, 70, 70) : palette().color(QPalette::Text);
        box.setAlpha(m_error ? 28 : 12);
        painter.setPen(Qt::NoPen);
        painter.setBrush(box);
        painter.drawRoundedRect(QRectF(area), 6, 6);
        if (m_message.isEmpty())
            return;
        QColor text = m_error ? QColor(190, 50, 50) : palette().color(QPalette::Text);
        if (!m_error)
            text.setAlphaF(0.6f);
        painter.setPen(text);
        painter.drawText(area.adjusted(16, 16, -16, -16), Qt::AlignCenter | Qt::TextWordWrap,
                         m_message);
    }

private:
    QPixmap m_pixmap;
    QPixmap m_scaled;
    QString m_message;
    bool m_error = false;
};

ImageDetailsPanel::ImageDetailsPanel(QWidget *parent)
    : QWidget(parent)
{
    // Two threads: a superseded decode (it cannot stop) does not hold up the next one.
    m_loader.setThreadPool(
        BackgroundJobBase::dedicatedPool(QStringLiteral("ifs-image-details"), 2));

    auto *outer = new QVBoxLayout(this);
    outer->setContentsMargins(0, 0, 0, 0);
    m_stack = new QStackedLayout;
    outer->addLayout(m_stack);

    m_emptyLabel = new QLabel(tr("Select an image to see its details"), this);
    m_emptyLabel->setObjectName(QStringLiteral("emptyLabel"));
    m_emptyLabel->setAlignment(Qt::AlignCenter);
    m_emptyLabel->setWordWrap(true);
    m_emptyLabel->setMargin(24);
    m_emptyLabel->setEnabled(false); // the palette's disabled text: a quiet grey
    m_stack->addWidget(m_emptyLabel);

    m_detailsPage = new QWidget(this);
    m_detailsPage->setObjectName(QStringLiteral("detailsPage"));
    auto *page = new QVBoxLayout(m_detailsPage);
    page->setContentsMargins(8, 8, 8, 8);

    m_preview = new Preview(m_detailsPage);
    m_preview->setObjectName(QStringLiteral("preview"));
    page->addWidget(m_preview, 1);

    m_titleLabel = new QLabel(m_detailsPage);
    m_titleLabel->setObjectName(QStringLiteral("titleLabel"));
    m_titleLabel->setTextFormat(Qt::PlainText);
    m_titleLabel->setWordWrap(true);
    m_titleLabel->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    QFont titleFont = m_titleLabel->font();
    titleFont.setBold(true);
    titleFont.setPointSizeF(titleFont.pointSizeF() * 1.15);
    m_titleLabel->setFont(titleFont);
    page->addSpacing(4);
    page->addWidget(m_titleLabel);

    auto *form = new QFormLayout;
    form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    form->setRowWrapPolicy(QFormLayout::DontWrapRows);
    form->setLabelAlignment(Qt::AlignRight | Qt::AlignVCenter);
    const auto makeValue = [this](const char *name) {
        auto *label = new QLabel(m_detailsPage);
        label->setObjectName(QString::fromLatin1(name));
        label->setTextInteractionFlags(Qt::TextSelectableByMouse);
        label->setTextFormat(Qt::PlainText);
        label->setWordWrap(true);
        label->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
        return label;
    };

    // A frameless read-only line edit: selectable, and a long path scrolls instead of widening
    // the panel.
    m_pathValue = new QLineEdit(m_detailsPage);
    m_pathValue->setObjectName(QStringLiteral("pathValue"));
    m_pathValue->setReadOnly(true);
    m_pathValue->setFrame(false);
    m_pathValue->setFocusPolicy(Qt::ClickFocus);
    QPalette pathPalette = m_pathValue->palette();
    pathPalette.setColor(QPalette::Base, Qt::transparent);
    m_pathValue->setPalette(pathPalette);
    m_pathValue->setTextMargins(-2, 0, 0, 0); // line up with the labels below

    m_classValue = makeValue("classValue");
    m_sizeValue = makeValue("sizeValue");
    m_modeValue = makeValue("modeValue");
    m_formatValue = makeValue("formatValue");
    m_fileSizeValue = makeValue("fileSizeValue");
    m_orientationValue = makeValue("orientationValue");
    form->addRow(tr("Path:"), m_pathValue);
    form->addRow(tr("Class:"), m_classValue);
    form->addRow(tr("Dimensions:"), m_sizeValue);
    form->addRow(tr("Mode:"), m_modeValue);
    form->addRow(tr("Format:"), m_formatValue);
    form->addRow(tr("File size:"), m_fileSizeValue);
    form->addRow(tr("EXIF orientation:"), m_orientationValue);
    page->addLayout(form);

    m_openFolderAction = new QAction(QIcon::fromTheme(QStringLiteral("folder-open")),
                                     tr("Open Containing Folder"), this);
    m_openFolderAction->setObjectName(QStringLiteral("openFolderAction"));
    m_openFolderAction->setToolTip(tr("Show the file in the system's file manager"));
    connect(m_openFolderAction, &QAction::triggered, this, [this] {
        const QString path = currentAbsolutePath();
        if (!path.isEmpty())
            QDesktopServices::openUrl(QUrl::fromLocalFile(QFileInfo(path).absolutePath()));
    });
    m_copyPathAction
        = new QAction(QIcon::fromTheme(QStringLiteral("edit-copy")), tr("Copy Path"), this);
    m_copyPathAction->setObjectName(QStringLiteral("copyPathAction"));
    m_copyPathAction->setToolTip(tr("Copy the file's absolute path to the clipboard"));
    connect(m_copyPathAction, &QAction::triggered, this, [this] {
        const QString path = currentAbsolutePath();
        if (!path.isEmpty())
            QGuiApplication::clipboard()->setText(QDir::toNativeSeparators(path));
    });

    const auto makeButton = [this](QAction *action, const char *name) {
        auto *button = new QToolButton(m_detailsPage);
        button->setObjectName(QString::fromLatin1(name));
        button->setDefaultAction(action);
        button->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
        button->setAutoRaise(false);
        return button;
    };
    m_openFolderButton = makeButton(m_openFolderAction, "openFolderButton");
    m_copyPathButton = makeButton(m_copyPathAction, "copyPathButton");
    auto *buttons = new QHBoxLayout;
    buttons->addWidget(m_openFolderButton);
    buttons->addWidget(m_copyPathButton);
    buttons->addStretch(1);
    page->addLayout(buttons);

    m_stack->addWidget(m_detailsPage);

    m_loadingTimer.setSingleShot(true);
    m_loadingTimer.setInterval(kLoadingDelayMs);
    connect(&m_loadingTimer, &QTimer::timeout, this, &ImageDetailsPanel::showLoadingState);
    m_loader.onFinished([this](const Loaded &loaded) {
        if (loaded.serial == m_serial)
            apply(loaded);
    });

    clear();
}

ImageDetailsPanel::~ImageDetailsPanel() = default; // m_loader drops a decode going

void ImageDetailsPanel::showSample(IndexPtr index, int sampleRow)
{
    if (!index || sampleRow < 0 || sampleRow >= int(index->samples.size())) {
        clear();
        return;
    }
    if (index == m_index && sampleRow == m_sampleRow)
        return; // already shown or on its way
    const bool wasEmpty = !m_index;
    m_index = std::move(index);
    m_sampleRow = sampleRow;
    ++m_serial;
    m_loading = true;
    if (wasEmpty) {
        // Nothing on screen to keep: show the loading state right away.
        m_stack->setCurrentWidget(m_detailsPage);
        showLoadingState();
    } else if (!m_loadingTimer.isActive()) {
        m_loadingTimer.start();
    }
    startLoading();
}

void ImageDetailsPanel::clear()
{
    m_index.reset();
    m_sampleRow = -1;
    ++m_serial;
    m_loader.discard();
    m_loading = false;
    m_loadingTimer.stop();
    m_preview->setMessage({}, false);
    setDetailsEnabled(false);
    m_stack->setCurrentWidget(m_emptyLabel);
}

QString ImageDetailsPanel::describeOrientation(int orientation)
{
    QString what;
    switch (orientation) {
    case 1:
        return tr("1 — normal");
    case 2:
        what = tr("mirrored horizontally");
        break;
    case 3:
        what = tr("rotated 180°");
        break;
    case 4:
        what = tr("mirrored vertically");
        break;
    case 5:
        what = tr("mirrored horizontally and rotated 90° CCW");
        break;
    case 6:
        what = tr("rotated 90° CW");
        break;
    case 7:
        what = tr("mirrored horizontally and rotated 90° CW");
        break;
    case 8:
        what = tr("rotated 90° CCW");
        break;
    default:
        return tr("%1 — not a valid value").arg(orientation);
    }
    return tr("%1 — %2; torchvision ignores it").arg(orientation).arg(what);
}

QString ImageDetailsPanel::describeFileSize(int64_t bytes)
{
    const QLocale locale;
    if (bytes < 1024)
        return bytes == 1 ? tr("1 byte") : tr("%1 bytes").arg(bytes);
    return tr("%1 (%2 bytes)")
        .arg(locale.formattedDataSize(bytes, 1, QLocale::DataSizeIecFormat),
             locale.toString(qlonglong(bytes)));
}

void ImageDetailsPanel::startLoading()
{
    const QString path = currentAbsolutePath();
    const uint64_t serial = m_serial;
    m_loader.start([path, serial](JobContext<NoProgress> &) -> Result<Loaded> {
        Loaded loaded;
        loaded.serial = serial;
        // The worker is the exception boundary: nothing escapes into the event loop.
        try {
            Result<ImageHeader> header = probeImage(path);
            if (header.ok())
                loaded.header = std::move(header).value();
            else
                loaded.headerError = header.errorMessage();
            Result<QImage> image = loadImageRgb(path, QSize(kPreviewMaxSize, kPreviewMaxSize));
            if (image.ok())
                loaded.image = std::move(image).value();
            else
                loaded.imageError = image.errorMessage();
        } catch (const std::exception &e) {
            loaded.imageError = QString::fromLocal8Bit(e.what());
        } catch (...) {
            loaded.imageError = QStringLiteral("unknown error");
        }
        if (loaded.image.isNull() && loaded.imageError.isEmpty())
            loaded.imageError = loaded.headerError.isEmpty() ? QStringLiteral("no pixels decoded")
                                                             : loaded.headerError;
        return loaded;
    });
}

void ImageDetailsPanel::showLoadingState()
{
    if (!m_index)
        return;
    showIdentity();
    for (QLabel *label :
         {m_sizeValue, m_modeValue, m_formatValue, m_fileSizeValue, m_orientationValue}) {
        label->clear();
        label->setToolTip({});
    }
    m_preview->setMessage(tr("Loading…"), false);
}

void ImageDetailsPanel::showIdentity()
{
    const Sample &sample = m_index->samples[size_t(m_sampleRow)];
    // Undecodable bytes of a name show as U+FFFD (base/filenames.h); the file opens by its bytes.
    const QString relativePath = displayFileName(sample.displayPath());
    m_titleLabel->setText(relativePath.mid(relativePath.lastIndexOf(u'/') + 1));
    m_pathValue->setText(relativePath);
    m_pathValue->setCursorPosition(0);
    m_pathValue->setToolTip(QDir::toNativeSeparators(displayFileName(currentAbsolutePath())));
    const QString className = displayFileName(m_index->classes.value(sample.classIndex));
    m_classValue->setText(tr("%1 (index %2)").arg(className).arg(sample.classIndex));
    setDetailsEnabled(true);
}

void ImageDetailsPanel::apply(const Loaded &loaded)
{
    m_loadingTimer.stop();
    m_loading = false;
    m_stack->setCurrentWidget(m_detailsPage);
    showIdentity();

    if (loaded.header) {
        const ImageHeader &header = *loaded.header;
        m_sizeValue->setText(tr("%1 × %2 px").arg(header.size.width()).arg(header.size.height()));
        const QString depth = header.bitDepth == 1 ? tr("1 bit per channel")
                                                   : tr("%1 bits per channel").arg(header.bitDepth);
        QString mode = tr("%1 (%2)").arg(pixelModeName(header.mode), depth);
        if (header.mode != PixelMode::RGB) {
            mode = tr("%1, loaded as RGB").arg(mode);
            m_modeValue->setToolTip(
                tr("torchvision's default loader converts every image to 8-bit RGB"));
        } else {
            m_modeValue->setToolTip({});
        }
        m_modeValue->setText(mode);
        m_formatValue->setText(header.format);
        m_fileSizeValue->setText(describeFileSize(header.fileSize));
        m_orientationValue->setText(describeOrientation(header.exifOrientation));
        m_orientationValue->setToolTip(
            header.exifOrientation == 1
                ? QString()
                : tr("Photo viewers rotate this image; torchvision's loader does not, so the "
                     "network sees it as shown here."));
    } else {
        for (QLabel *label : {m_sizeValue, m_modeValue, m_formatValue, m_orientationValue}) {
            label->setText(dash());
            label->setToolTip({});
        }
        const int64_t size = fileSizeOf(currentAbsolutePath());
        m_fileSizeValue->setText(size >= 0 ? describeFileSize(size) : dash());
        m_formatValue->setToolTip(loaded.headerError);
    }

    if (!loaded.image.isNull()) {
        m_preview->setImage(loaded.image);
    } else {
        // The core's message is a sentence of its own that names the file and the reason.
        m_preview->setMessage(
            displayFileName(
                tr("Cannot read image “%1”:\n%2").arg(currentRelativePath(), loaded.imageError)),
            true);
    }
    Q_EMIT sampleLoaded(m_sampleRow);
}

void ImageDetailsPanel::setDetailsEnabled(bool enabled)
{
    m_openFolderAction->setEnabled(enabled);
    m_copyPathAction->setEnabled(enabled);
}

QString ImageDetailsPanel::currentAbsolutePath() const
{
    if (!m_index || m_sampleRow < 0)
        return {};
    return m_index->absolutePath(m_index->samples[size_t(m_sampleRow)]);
}

QString ImageDetailsPanel::currentRelativePath() const
{
    if (!m_index || m_sampleRow < 0)
        return {};
    return m_index->samples[size_t(m_sampleRow)].displayPath();
}

} // namespace ifs
