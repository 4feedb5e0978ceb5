#pragma once

#include "common/backgroundjob.h"
#include "dataset/imagefolder.h"
#include "image/imageprobe.h"

#include <QImage>
#include <QTimer>
#include <QWidget>

#include <cstdint>
#include <optional>

class QAction;
class QLabel;
class QLineEdit;
class QStackedLayout;
class QToolButton;

namespace ifs {

/// One image large, with what its header says and how torchvision will see it.
///
/// The header is probed and the preview decoded off the GUI thread (one private worker; when the
/// selection moves faster than decoding, only the latest sample is decoded). The panel switches to
/// the new sample in one go when its data is there, or shows "Loading…" if that takes a while.
class ImageDetailsPanel : public QWidget
{
    Q_OBJECT

public:
    /// Longest side the preview is decoded at.
    static constexpr int kPreviewMaxSize = 2048;
    /// How long the previous sample stays up before "Loading…" replaces it.
    static constexpr int kLoadingDelayMs = 150;

    explicit ImageDetailsPanel(QWidget *parent = nullptr);
    ~ImageDetailsPanel() override;

    /// Shows `index->samples[sampleRow]`; clears the panel when the row is out of range.
    void showSample(IndexPtr index, int sampleRow);
    /// Back to "Select an image to see its details".
    void clear();

    IndexPtr dataset() const { return m_index; }
    int sampleRow() const { return m_sampleRow; }
    /// True while the shown sample's header and preview are being read.
    bool isLoading() const { return m_loading; }

    /// "Open Containing Folder" and "Copy Path" for the shown sample, to reuse in context menus.
    QAction *openFolderAction() const { return m_openFolderAction; }
    QAction *copyPathAction() const { return m_copyPathAction; }

    /// "6 — rotated 90° CW; torchvision ignores it" for an EXIF orientation value.
    static QString describeOrientation(int orientation);
    /// "12.3 KiB (12,595 bytes)".
    static QString describeFileSize(int64_t bytes);

Q_SIGNALS:
    /// The header and preview of `sampleRow` (or their errors) are on screen.
    void sampleLoaded(int sampleRow);

private:
    class Preview;

    struct Loaded
    {
        uint64_t serial = 0;
        std::optional<ImageHeader> header;
        QString headerError;
        QImage image;
        QString imageError;
    };

    void startLoading();
    void showLoadingState();
    void showIdentity();
    void apply(const Loaded &loaded);
    void setDetailsEnabled(bool enabled);
    QString currentAbsolutePath() const;
    QString currentRelativePath() const;

    QStackedLayout *m_stack = nullptr;
    QLabel *m_emptyLabel = nullptr;
    QWidget *m_detailsPage = nullptr;
    Preview *m_preview = nullptr;
    QLabel *m_titleLabel = nullptr;
    QLineEdit *m_pathValue = nullptr;
    QLabel *m_classValue = nullptr;
    QLabel *m_sizeValue = nullptr;
    QLabel *m_modeValue = nullptr;
    QLabel *m_formatValue = nullptr;
    QLabel *m_fileSizeValue = nullptr;
    QLabel *m_orientationValue = nullptr;
    QToolButton *m_openFolderButton = nullptr;
    QToolButton *m_copyPathButton = nullptr;
    QAction *m_openFolderAction = nullptr;
    QAction *m_copyPathAction = nullptr;

    IndexPtr m_index;
    int m_sampleRow = -1;
    uint64_t m_serial = 0; // of the sample asked for last; results of older ones are dropped
    bool m_loading = false;
    QTimer m_loadingTimer;
    BackgroundJob<Loaded> m_loader; // the latest sample's decode supersedes the one before
};

} // namespace ifs
