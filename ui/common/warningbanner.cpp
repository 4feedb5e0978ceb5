#include "common/warningbanner.h"

#include "base/filenames.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QStyle>
#include <QToolButton>

namespace ifs {

WarningBanner::WarningBanner(QWidget *parent)
    : QFrame(parent)
    , m_icon(new QLabel(this))
    , m_text(new QLabel(this))
    , m_action(new QPushButton(this))
    , m_close(new QToolButton(this))
{
    setObjectName(QStringLiteral("warningBanner"));
    setFrameShape(QFrame::StyledPanel);
    m_text->setWordWrap(true);
    m_text->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_text->setObjectName(QStringLiteral("bannerText"));
    m_close->setAutoRaise(true);
    m_close->setText(QStringLiteral("✕"));
    m_close->setToolTip(tr("Dismiss"));
    m_action->hide();

    auto *layout = new QHBoxLayout(this);
    layout->setContentsMargins(10, 6, 6, 6);
    layout->addWidget(m_icon, 0, Qt::AlignTop);
    layout->addWidget(m_text, 1);
    layout->addWidget(m_action, 0, Qt::AlignVCenter);
    layout->addWidget(m_close, 0, Qt::AlignTop);

    connect(m_close, &QToolButton::clicked, this, &WarningBanner::dismiss);
    connect(m_action, &QPushButton::clicked, this, &WarningBanner::actionTriggered);
    hide();
}

void WarningBanner::showMessage(Level level, const QString &text, const QString &actionText)
{
    m_level = level;
    QStyle::StandardPixmap pixmap = QStyle::SP_MessageBoxInformation;
    QString colors = QStringLiteral("background: #e8f1fb; border: 1px solid #9ec3ea;");
    if (level == Level::Warning) {
        pixmap = QStyle::SP_MessageBoxWarning;
        colors = QStringLiteral("background: #fff6dd; border: 1px solid #e8c766;");
    } else if (level == Level::Error) {
        pixmap = QStyle::SP_MessageBoxCritical;
        colors = QStringLiteral("background: #fde7e7; border: 1px solid #e08a8a;");
    }
    setStyleSheet(QStringLiteral("QFrame#warningBanner { %1 border-radius: 4px; } "
                                 "QFrame#warningBanner QLabel { background: transparent; "
                                 "border: none; color: #222; }")
                      .arg(colors));
    m_icon->setPixmap(style()->standardIcon(pixmap).pixmap(20, 20));
    m_text->setText(displayFileName(text)); // names may hold undecodable bytes (base/filenames.h)
    m_action->setText(actionText);
    m_action->setVisible(!actionText.isEmpty());
    show();
}

void WarningBanner::dismiss()
{
    hide();
}

QString WarningBanner::text() const
{
    return m_text->text();
}

} // namespace ifs
